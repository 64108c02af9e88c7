/**
 * `npm run bench`: wall time and peak memory of the compiled file, as ratios to a bare Node
 * start (`node -e 0`) measured in the same run. Scenarios are interleaved round by round so
 * machine noise hits them all alike; medians are reported. Targets only 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEndpoint, type Endpoint } from './endpoint.ts';

const BUNDLE = path.resolve(__dirname, '../dist/anonymous-statistics.js');
const REFERENCES = path.join(__dirname, 'bench-references');

interface Scenario {
  name: string;
  goal?: number;
  args: (env: BenchEnv) => string[];
  env?: Record<string, string>;
  /** Runs before each timed run, untimed. */
  prepare?: (env: BenchEnv) => void;
}

interface BenchEnv {
  endpoint: Endpoint;
  hanging: Endpoint;
  dir: string;
}

const QUEUED_FOR_FLUSH = 1000;

/** Fills a state dir's queue with QUEUED_FOR_FLUSH events, as offline runs would have left it. */
function fillQueue(stateDir: string): void {
  const queue = path.join(stateDir, 'queue');
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(queue, { recursive: true, mode: 0o700 });
  for (let i = 0; i < QUEUED_FOR_FLUSH; i++) {
    const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const event = { api_key: 'phc_bench', event: 'start', uuid, timestamp: '2026-01-01T00:00:00.000Z', properties: { distinct_id: 'bench', product: 'bench', host_os_name: 'Debian GNU/Linux', system_kernel_version: '6.1.0-18-amd64' } };
    writeFileSync(path.join(queue, `20260101000000${String(i).padStart(6, '0')}-${uuid}.json`), JSON.stringify(event), { mode: 0o600 });
  }
}

const SCENARIOS: Scenario[] = [
  { name: 'node -e 0 (floor)', args: () => ['-e', '0'] },
  {
    name: 'start to loopback endpoint',
    goal: 1.25,
    // A fresh crash-loop window each time, or every run past the tenth this hour would be held back.
    prepare: ({ dir }) => rmSync(path.join(dir, 'event-rate.json'), { force: true }),
    args: ({ endpoint, dir }) => [BUNDLE, 'start', '--endpoint', endpoint.url, '--state-dir', dir, '--config-dir', dir],
  },
  { name: 'start, opted out (DO_NOT_TRACK)', goal: 1.1, env: { DO_NOT_TRACK: '1' }, args: ({ endpoint, dir }) => [BUNDLE, 'start', '--endpoint', endpoint.url, '--state-dir', dir, '--config-dir', dir] },
  { name: 'start --dry-run', args: ({ endpoint, dir }) => [BUNDLE, 'start', '--dry-run', '--endpoint', endpoint.url, '--state-dir', dir, '--config-dir', dir] },
  {
    // Guards the scrubber against patterns that go quadratic on long input.
    name: 'fatal --dry-run, 120 KB message',
    args: ({ dir }) => [BUNDLE, 'fatal', '--process', 'p', '--thread', 't', '--message', 'a.'.repeat(60_000), '--dry-run', '--state-dir', dir, '--config-dir', dir],
  },
  {
    name: 'start --background, endpoint hanging',
    goal: 1.2,
    args: ({ hanging, dir }) => [BUNDLE, 'start', '--background', '--timeout', '300', '--endpoint', hanging.url, '--state-dir', path.join(dir, 'background'), '--config-dir', dir],
  },
  {
    name: `flush of ${QUEUED_FOR_FLUSH} queued events`,
    goal: 2,
    prepare: ({ dir }) => fillQueue(path.join(dir, 'flush')),
    args: ({ endpoint, dir }) => [BUNDLE, 'flush', '--timeout', '10000', '--endpoint', endpoint.url, '--state-dir', path.join(dir, 'flush'), '--config-dir', dir],
  },
  { name: 'reference: bare node:http POST', args: ({ endpoint }) => [path.join(REFERENCES, 'node-http-post.cjs'), `${endpoint.url}/capture/`] },
  { name: 'reference: bare undici POST', args: ({ endpoint }) => [path.join(REFERENCES, 'undici-post.cjs'), `${endpoint.url}/capture/`] },
];

const MEMORY_GOAL = 1.15;

function runOnce(args: string[], env: Record<string, string>): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: 'ignore', env: { PATH: process.env.PATH ?? '', ...env } });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - started) / 1e6) : reject(new Error(`${args.join(' ')} exited ${code}`))));
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Peak RSS in KiB, reported by the child itself at exit through a preloaded hook. */
async function peakRssKiB(args: string[], env: Record<string, string>, dir: string): Promise<number> {
  const hook = path.join(dir, 'rss-hook.cjs');
  const out = path.join(dir, 'rss.txt');
  writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(out)}, String(process.resourceUsage().maxRSS)));`);
  await runOnce(['--require', hook, ...args], env);
  return Number(readFileSync(out, 'utf8'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '40' } } });
  const rounds = Number(values.rounds);
  const endpoint = await startEndpoint();
  const hanging = await startEndpoint({ kind: 'hang' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-bench-'));
  const benchEnv = { endpoint, hanging, dir };
  const timed = async (scenario: Scenario) => {
    scenario.prepare?.(benchEnv);
    return runOnce(scenario.args(benchEnv), scenario.env ?? {});
  };
  try {
    const times = SCENARIOS.map(() => [] as number[]);
    const memory = SCENARIOS.map(() => [] as number[]);
    for (const scenario of SCENARIOS) await timed(scenario); // warm the page cache
    for (let round = 0; round < rounds; round++) {
      for (const [i, scenario] of SCENARIOS.entries()) times[i].push(await timed(scenario));
    }
    for (let round = 0; round < 5; round++) {
      for (const [i, scenario] of SCENARIOS.entries()) {
        scenario.prepare?.(benchEnv);
        memory[i].push(await peakRssKiB(scenario.args(benchEnv), scenario.env ?? {}, dir));
      }
    }
    const floorTime = median(times[0]);
    const floorRss = median(memory[0]);
    console.log(`node ${process.version}, ${os.cpus().length} cpus, ${rounds} interleaved rounds, medians\n`);
    console.log(`${'scenario'.padEnd(34)} ${'wall ms'.padStart(8)} ${'ratio'.padStart(6)} ${'goal'.padStart(6)} ${'peak RSS MiB'.padStart(13)} ${'ratio'.padStart(6)}`);
    for (const [i, scenario] of SCENARIOS.entries()) {
      const ms = median(times[i]);
      const rss = median(memory[i]);
      const goal = scenario.goal ? `${scenario.goal.toFixed(2)}x` : '';
      console.log(
        `${scenario.name.padEnd(34)} ${ms.toFixed(1).padStart(8)} ${(ms / floorTime).toFixed(2).padStart(5)}x ${goal.padStart(6)} ${(rss / 1024).toFixed(1).padStart(13)} ${(rss / floorRss).toFixed(2).padStart(5)}x`,
      );
    }
    console.log(`\npeak memory goal: at most ${MEMORY_GOAL}x the floor`);
    console.log(`compiled file: ${statSync(BUNDLE).size} bytes`);
    console.log(`requests received by the loopback endpoints: ${endpoint.requests.length} answered, ${hanging.requests.length} left hanging`);
  } finally {
    await hanging.close();
    await endpoint.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
