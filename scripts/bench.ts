/**
 * `npm run bench`: wall time and peak memory of the compiled file on the production path, each
 * as a ratio to a floor measured in the same run: a bare `node -e 0`, and the least a Node POST
 * costs (bench-references/node-post.cjs) over https: and http:.
 *
 * - The receiver (bench-references/receiver.cjs) runs in a process of its own, so the timing
 *   process does no server work while a run is timed. Its https: certificate comes from a test CA
 *   made with openssl at bench start; the product and the https: floor trust it the same way,
 *   through NODE_EXTRA_CA_CERTS. That variable makes Node build its root store at start-up: a
 *   process that talks https: builds it anyway (the floors show both), so the https: rows are
 *   divided by an https: floor with the variable, and `flush` by the `node -e 0` without it.
 * - Every run gets a minimal environment (PATH, plus what the row needs) and its own state dir,
 *   copied untimed from one that a single `start` left, so no run sees another's crash-loop
 *   count, back-off or queue.
 * - Rounds are interleaved: every row once per round, in a new random order, so machine noise
 *   hits them all alike. A ratio is the median of the per-round ratios (row / its floor in the
 *   same round). Peak memory is measured in separate untimed rounds (see `peakKiB`).
 * - Each run is checked untimed (exit code, events the receiver got, nothing sent when opted
 *   out); a row whose runs do not do their work is reported "not available", not timed.
 *
 * It reports goals and never fails on them: it exits non-zero only when the bench itself broke.
 * Targets only 127.0.0.1; stops by itself; leaves no process and no temp dir behind.
 *
 *   npm run bench [-- --rounds 30] [--memory-rounds 5] [--json FILE] [--bundle FILE]
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

/** What `npm run bench` builds; --bundle measures another build (an older one, to compare). */
const BUILT = path.resolve(__dirname, '../dist/anonymous-statistics.js');
const REFERENCES = path.join(__dirname, 'bench-references');
/** Debian's `time` package: it reads the child's peak RSS from wait4(), outside the child. */
const GNU_TIME = '/usr/bin/time';
const QUEUED_FOR_FLUSH = 1000;
const MEMORY_GOAL = 1.15;
/** A run still going after this has hung: its row is reported broken. */
const RUN_LIMIT_MS = 30_000;
/** --background's detached child gives up on the hanging receiver after this. */
const BACKGROUND_TIMEOUT_MS = 300;
/** A detached child still alive this long after its caller ignored its timeout. */
const SETTLE_LIMIT_MS = 10_000;

type Env = Record<string, string>;
type Server = 'https' | 'http' | 'hanging';
type Counts = Record<Server, { requests: number; events: number }>;

interface Receiver {
  pid: number;
  urls: Record<Server, string>;
  counts(): Promise<Counts>;
  stop(): void;
}

interface Row {
  name: string;
  /** The row this one is divided by; floors have none. */
  floor?: Row;
  /** Another floor worth comparing with, shown without a goal. */
  alsoVs?: Row;
  /** At most this many times its floor's wall time (the median of per-round ratios). */
  timeGoal?: number;
  /** At most this many times its floor's peak RSS; set on the product's rows. */
  memoryGoal?: number;
  /** Wall ms, one per round. */
  times: number[];
  /** Peak RSS in KiB, one per memory round. */
  peaks: number[];
  unavailable?: string;
}

interface Run {
  /** The command and its arguments. */
  argv: string[];
  env: Env;
}

interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one command, recording what the mode measures (wall ms, peak KiB, or nothing) in row. */
type Measure = (row: Row, run: Run) => Outcome;

/** One or more rows played together each round (command-end needs command-start's id). */
interface Unit {
  rows: Row[];
  play(measure: Measure): Promise<void>;
}

/** A row whose run did not do its work: reported, never timed further. */
class RowBroken extends Error {
  constructor(
    readonly row: Row,
    reason: string,
  ) {
    super(reason);
  }
}

const row = (name: string, floor?: Row): Row => ({ name, floor, times: [], peaks: [] });
/** A row of the compiled file: its peak memory has the same goal everywhere. */
const productRow = (name: string, floor: Row, timeGoal?: number): Row => ({ ...row(name, floor), timeGoal, memoryGoal: MEMORY_GOAL });

// ---------------------------------------------------------------------------------------------
// Set-up: test CA, receiver, template state dir

function makeTestCa(dir: string): { caFile: string; key: string; cert: string } {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const oneDay = ['-days', '1', '-nodes'];
  openssl('req', '-x509', '-newkey', 'rsa:2048', ...oneDay, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-subj', '/CN=anonymous-statistics bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  openssl('req', '-newkey', 'rsa:2048', ...oneDay, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  execFileSync('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-set_serial', '1', '-days', '1', '-out', file('server.pem'), '-extfile', file('server.ext')], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { caFile: file('ca.pem'), key: file('server.key'), cert: file('server.pem') };
}

async function startReceiver(tls: { key: string; cert: string }): Promise<Receiver> {
  const child: ChildProcess = spawn(process.execPath, [path.join(REFERENCES, 'receiver.cjs')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { PATH: process.env.PATH ?? '' } });
  // Every wait on the receiver also waits on this, so a receiver that died is an error, not a hang.
  const gone = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`the receiver exited (${signal ?? code})`)));
  });
  gone.catch(() => {}); // its exit at the end of the bench is the normal one
  const answer = async <T>(message: unknown): Promise<T> => {
    child.send(message as object);
    const [reply] = (await Promise.race([once(child, 'message'), gone])) as [T];
    return reply;
  };
  const ready = await Promise.race([answer<{ ports: Record<Server, number> }>(tls), delay(10_000).then(() => Promise.reject(new Error('the receiver was not ready within 10 s')))]);
  const url = (scheme: string, port: number) => `${scheme}://127.0.0.1:${port}`;
  return {
    pid: child.pid as number,
    urls: { https: url('https', ready.ports.https), http: url('http', ready.ports.http), hanging: url('http', ready.ports.hanging) },
    counts: async () => (await answer<{ received: Counts }>('counts')).received,
    stop: () => void child.kill(),
  };
}

// ---------------------------------------------------------------------------------------------
// Processes a run may leave behind (--background's detached child)

function processesMentioning(text: string, except: Set<number>): number[] {
  const mentions = (file: string) => {
    try {
      return readFileSync(file).includes(text);
    } catch {
      return false; // gone meanwhile, or not ours to read
    }
  };
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => !except.has(pid) && (mentions(`/proc/${pid}/cmdline`) || mentions(`/proc/${pid}/environ`)));
}

/**
 * Waits until no process names `marker` (a run's own dir) in its command line or environment,
 * which is how a detached child is known to be ours; kills the ones still there after
 * SETTLE_LIMIT_MS and returns their pids.
 */
async function settle(marker: string, except: Set<number>): Promise<number[]> {
  const deadline = Date.now() + SETTLE_LIMIT_MS;
  for (;;) {
    const pids = processesMentioning(marker, except);
    if (pids.length === 0) return [];
    if (Date.now() > deadline) {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // it ended meanwhile
        }
      }
      return pids;
    }
    await delay(10);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

const node = (...args: string[]) => [process.execPath, ...args];

function execute(run: Run, prefix: string[] = []): Outcome & { ms: number } {
  const [command, ...args] = [...prefix, ...run.argv];
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { env: run.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_LIMIT_MS, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') throw new Error(`did not finish within ${RUN_LIMIT_MS / 1000} s`);
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString(), ms };
}

function guarded(row: Row, run: () => Outcome & { ms: number }): Outcome & { ms: number } {
  try {
    const outcome = run();
    if (outcome.status === null) throw new Error('was killed by a signal');
    return outcome;
  } catch (error) {
    throw new RowBroken(row, (error as Error).message);
  }
}

const untimed: Measure = (target, run) => guarded(target, () => execute(run));
const timed: Measure = (target, run) => {
  const outcome = guarded(target, () => execute(run));
  target.times.push(outcome.ms);
  return outcome;
};

/**
 * Peak RSS through GNU time, which reads it from the rusage wait4() returns for the child: it
 * covers the whole life of the process (the last page touched before exit included), adds
 * nothing to the child, and leaves out --background's detached child, which the caller does
 * not wait for. process.resourceUsage() in the bench would be the bench's own, and a hook
 * preloaded into the child would change what is measured.
 */
function peakKiB(dir: string): Measure {
  const report = path.join(dir, 'peak-rss');
  return (target, run) => {
    const outcome = guarded(target, () => execute(run, [GNU_TIME, '-f', '%M', '-o', report]));
    target.peaks.push(Number(readFileSync(report, 'utf8').trim().split('\n').pop()));
    return outcome;
  };
}

function hasGnuTime(): boolean {
  try {
    return execFileSync(GNU_TIME, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).includes('GNU');
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Rows

interface Bench {
  /** The compiled file measured. */
  bundle: string;
  dir: string;
  receiver: Receiver;
  /** PATH only. */
  plainEnv: Env;
  /** PATH and NODE_EXTRA_CA_CERTS naming the test CA. */
  caEnv: Env;
  configDir: string;
  /** A state dir as one `start` over https left it. */
  template: string;
  /** The event `start --dry-run` printed, the model of the queued events `flush` sends. */
  sampleEvent?: Record<string, unknown>;
  /** The floors' request body: about 2 KB, more than the product's `start` event. */
  body: string;
}

function floorBody(): string {
  const event = { api_key: 'phc_bench', event: 'start', uuid: randomUUID(), timestamp: new Date().toISOString(), properties: { distinct_id: randomUUID(), padding: '' } };
  event.properties.padding = 'x'.repeat(2048 - JSON.stringify(event).length);
  return JSON.stringify(event);
}

function reasonOf(outcome: Outcome): string {
  const said = outcome.stderr.trim().split('\n')[0];
  return `exited ${outcome.status}${said ? `: ${said}` : ''}`;
}

function expectExit(target: Row, outcome: Outcome): void {
  if (outcome.status !== 0) throw new RowBroken(target, reasonOf(outcome));
}

async function expectEvents(bench: Bench, target: Row, before: Counts, server: Server, expected: number): Promise<void> {
  const got = (await bench.receiver.counts())[server].events - before[server].events;
  if (got < expected) throw new RowBroken(target, `the receiver got ${got} of the ${expected} event(s) it should have`);
}

async function expectNothingSent(bench: Bench, target: Row, before: Counts): Promise<void> {
  const after = await bench.receiver.counts();
  const sent = (['https', 'http', 'hanging'] as const).reduce((sum, server) => sum + after[server].requests - before[server].requests, 0);
  if (sent > 0) throw new RowBroken(target, `sent ${sent} request(s) where it should send none`);
}

const EXECUTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The outbox of the state dir (Maildir-style): one capture event per file in new/. */
function fillOutbox(stateDir: string, event: Record<string, unknown>): void {
  const outbox = path.join(stateDir, 'outbox');
  for (const folder of ['tmp', 'new', 'cur']) mkdirSync(path.join(outbox, folder), { recursive: true, mode: 0o700 });
  const oldest = Date.now() - QUEUED_FOR_FLUSH * 1000;
  for (let i = 0; i < QUEUED_FOR_FLUSH; i++) {
    const uuid = randomUUID();
    const at = oldest + i * 1000;
    const item = { ...event, uuid, timestamp: new Date(at).toISOString() };
    writeFileSync(path.join(outbox, 'new', `${String(at).padStart(13, '0')}-${uuid}.json`), JSON.stringify(item), { mode: 0o600 });
  }
}

function units(bench: Bench): { floors: Row[]; units: Unit[] } {
  const { receiver, plainEnv, caEnv, configDir } = bench;
  let runs = 0;
  /** A state dir of the run's own, as the template left it (untimed). */
  const freshStateDir = () => {
    const dir = path.join(bench.dir, 'runs', String(++runs));
    cpSync(bench.template, dir, { recursive: true });
    return dir;
  };
  const product = (command: string[], stateDir: string, endpoint: string) => node(bench.bundle, ...command, '--endpoint', endpoint, '--state-dir', stateDir, '--config-dir', configDir);
  const except = new Set([process.pid, receiver.pid]);

  const bareNode = row('node -e 0');
  const bareNodeCa = row('node -e 0, test CA env');
  const httpPost = row('node:http POST, 2 KB');
  const httpsPost = row('node:https POST, 2 KB');
  const httpsPostUnverified = row('node:https POST, 2 KB, no CA env, unverified');
  const spawnOverhead = row('/bin/true (spawn overhead)');

  const single = (target: Row, play: (measure: Measure, target: Row) => Promise<void>): Unit => ({ rows: [target], play: (measure) => play(measure, target) });
  const floor = (target: Row, run: () => Run): Unit =>
    single(target, async (measure) => expectExit(target, measure(target, run())));
  /** A row of the product: a fresh state dir, the run (its command line is made untimed), the check. */
  const scenario = (target: Row, run: (stateDir: string) => Run, check: (outcome: Outcome, before: Counts, stateDir: string) => Promise<void>): Unit =>
    single(target, async (measure) => {
      const stateDir = freshStateDir();
      try {
        const before = await receiver.counts();
        const outcome = measure(target, run(stateDir));
        expectExit(target, outcome);
        await check(outcome, before, stateDir);
      } finally {
        rmSync(stateDir, { recursive: true, force: true });
      }
    });

  const startHttps = productRow('start, https', httpsPost, 1.1);
  const startHttp = productRow('start, http', httpPost);
  const optedOut = productRow('start, opted out (DO_NOT_TRACK=1)', bareNode, 1.05);
  const background = productRow('start --background, receiver hanging', bareNode, 1.1);
  // NODE_EXTRA_CA_CERTS makes Node build its root store at start-up, which an https: process
  // does anyway at its first connection (compare the two https: POST floors) and `node -e 0`
  // never does: so `flush`, sending with it, compares with a `node -e 0` without it, as on a
  // machine that needs no test CA. The ratio to the floor with it is shown as well.
  const flush = { ...productRow(`flush of ${QUEUED_FOR_FLUSH.toLocaleString('en')} queued events, https`, bareNode, 2), alsoVs: bareNodeCa };
  const dryRun = productRow('start --dry-run', bareNode);
  const fatalDryRun = productRow('fatal --dry-run, 120 KB message', bareNode);
  // Issue 10: a CLI calls these two around each command, so each must cost what `start` does.
  const commandStart = productRow('command-start, https', httpsPost, 1.1);
  const commandEnd = productRow('command-end, https', httpsPost, 1.1);
  const commandStartOptedOut = productRow('command-start, opted out', bareNode, 1.05);
  const undici = row('reference: undici POST, https', httpsPost);

  const noSend = (target: Row) => (_: Outcome, before: Counts) => expectNothingSent(bench, target, before);
  const commandStartArgs = ['command-start', '--name', 'converge', '--option', 'repo', '--option', 'dev', '--env-option', 'env'];
  const expectExecutionId = (target: Row, outcome: Outcome) => {
    const id = outcome.stdout.trim();
    if (!EXECUTION_ID.test(id)) throw new RowBroken(target, `printed ${JSON.stringify(id.slice(0, 80))}, not an execution id`);
    return id;
  };

  const list: Unit[] = [
    floor(bareNode, () => ({ argv: node('-e', '0'), env: plainEnv })),
    floor(bareNodeCa, () => ({ argv: node('-e', '0'), env: caEnv })),
    floor(httpPost, () => ({ argv: node(path.join(REFERENCES, 'node-post.cjs'), `${receiver.urls.http}/capture/`, bench.body), env: plainEnv })),
    floor(httpsPost, () => ({ argv: node(path.join(REFERENCES, 'node-post.cjs'), `${receiver.urls.https}/capture/`, bench.body), env: caEnv })),
    floor(httpsPostUnverified, () => ({ argv: node(path.join(REFERENCES, 'node-post.cjs'), `${receiver.urls.https}/capture/`, bench.body, 'unverified'), env: plainEnv })),
    // What starting and reaping any process costs the bench; it is inside every row's time.
    floor(spawnOverhead, () => ({ argv: ['/bin/true'], env: plainEnv })),
    scenario(startHttps, (state) => ({ argv: product(['start'], state, receiver.urls.https), env: caEnv }), (_, before) => expectEvents(bench, startHttps, before, 'https', 1)),
    scenario(startHttp, (state) => ({ argv: product(['start'], state, receiver.urls.http), env: plainEnv }), (_, before) => expectEvents(bench, startHttp, before, 'http', 1)),
    scenario(optedOut, (state) => ({ argv: product(['start'], state, receiver.urls.https), env: { ...plainEnv, DO_NOT_TRACK: '1' } }), noSend(optedOut)),
    scenario(
      background,
      // The caller never connects, so plain http: keeps its environment that of `node -e 0`.
      (state) => ({ argv: product(['start', '--background', '--timeout', String(BACKGROUND_TIMEOUT_MS)], state, receiver.urls.hanging), env: plainEnv }),
      async (_, __, state) => {
        const killed = await settle(state, except);
        if (killed.length > 0) throw new RowBroken(background, `its detached child was still running ${SETTLE_LIMIT_MS / 1000} s later (killed ${killed.join(', ')})`);
      },
    ),
    scenario(
      flush,
      (state) => {
        if (!bench.sampleEvent) throw new RowBroken(flush, 'needs the event `start --dry-run` prints, and that run failed');
        fillOutbox(state, bench.sampleEvent);
        return { argv: product(['flush', '--timeout', '10000'], state, receiver.urls.https), env: caEnv };
      },
      (_, before) =>
        expectEvents(bench, flush, before, 'https', QUEUED_FOR_FLUSH).catch((error: RowBroken) => {
          throw new RowBroken(flush, `${error.message} (written as files in <state>/outbox/new/; a build from before the outbox layout does not read them)`);
        }),
    ),
    scenario(dryRun, (state) => ({ argv: product(['start', '--dry-run'], state, receiver.urls.https), env: plainEnv }), noSend(dryRun)),
    scenario(
      fatalDryRun,
      (state) => ({ argv: product(['fatal', '--process', 'bench', '--thread', 'main', '--message', 'a.'.repeat(60_000), '--dry-run'], state, receiver.urls.https), env: plainEnv }),
      noSend(fatalDryRun),
    ),
    {
      rows: [commandStart, commandEnd],
      async play(measure) {
        const stateDir = freshStateDir();
        try {
          let before = await receiver.counts();
          const started = measure(commandStart, { argv: product(commandStartArgs, stateDir, receiver.urls.https), env: caEnv });
          expectExit(commandStart, started);
          const executionId = expectExecutionId(commandStart, started);
          await expectEvents(bench, commandStart, before, 'https', 1);
          before = await receiver.counts();
          const ended = measure(commandEnd, { argv: product(['command-end', '--execution-id', executionId, '--exit-code', '0'], stateDir, receiver.urls.https), env: caEnv });
          expectExit(commandEnd, ended);
          await expectEvents(bench, commandEnd, before, 'https', 1);
        } finally {
          rmSync(stateDir, { recursive: true, force: true });
        }
      },
    },
    scenario(commandStartOptedOut, (state) => ({ argv: product(commandStartArgs, state, receiver.urls.https), env: { ...plainEnv, DO_NOT_TRACK: '1' } }), async (outcome, before) => {
      expectExecutionId(commandStartOptedOut, outcome);
      await expectNothingSent(bench, commandStartOptedOut, before);
    }),
    floor(undici, () => ({ argv: node(path.join(REFERENCES, 'undici-post.cjs'), `${receiver.urls.https}/capture/`, bench.body), env: caEnv })),
  ];
  return { floors: [bareNode, bareNodeCa, httpPost, httpsPost, httpsPostUnverified, spawnOverhead], units: list };
}

// ---------------------------------------------------------------------------------------------
// Rounds

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

/**
 * Plays every unit once, in the given order. A unit whose run did not do its work is reported
 * and dropped from later rounds; a floor that breaks breaks the bench, since every ratio needs it.
 */
async function playRound(order: Unit[], measure: Measure, floors: Row[], when: string): Promise<Unit[]> {
  const broken = new Set<Unit>();
  for (const unit of order) {
    try {
      await unit.play(measure);
    } catch (error) {
      if (!(error instanceof RowBroken)) throw error;
      if (floors.includes(error.row)) throw new Error(`floor "${error.row.name}" broke ${when}: ${error.message}`);
      broken.add(unit);
      for (const target of unit.rows) target.unavailable = target === error.row ? `${error.message} (${when})` : `not measured: "${error.row.name}" broke`;
    }
  }
  return order.filter((unit) => !broken.has(unit));
}

// ---------------------------------------------------------------------------------------------
// Statistics and report

interface Spread {
  median: number;
  p25: number;
  p75: number;
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (at - low);
}

const spread = (values: readonly number[]): Spread => ({ median: quantile(values, 0.5), p25: quantile(values, 0.25), p75: quantile(values, 0.75) });

interface RowResult {
  name: string;
  floor?: string;
  unavailable?: string;
  ms?: Spread;
  ratio?: Spread;
  alsoVs?: { floor: string; ratio: Spread };
  timeGoal?: number;
  timeGoalMet?: boolean;
  peakMiB?: number;
  peakRatio?: number;
  memoryGoal?: number;
  memoryGoalMet?: boolean;
  samples: { ms: number[]; peakKiB: number[] };
}

function summarize(target: Row): RowResult {
  const result: RowResult = { name: target.name, floor: target.floor?.name, timeGoal: target.timeGoal, memoryGoal: target.memoryGoal, samples: { ms: target.times, peakKiB: target.peaks } };
  if (target.unavailable) return { ...result, unavailable: target.unavailable };
  result.ms = spread(target.times);
  const ratioTo = (floor: Row) => spread(target.times.map((ms, round) => ms / floor.times[round]));
  const { floor, alsoVs } = target;
  if (floor) {
    result.ratio = ratioTo(floor);
    if (target.timeGoal) result.timeGoalMet = result.ratio.median <= target.timeGoal;
  }
  if (alsoVs) result.alsoVs = { floor: alsoVs.name, ratio: ratioTo(alsoVs) };
  if (target.peaks.length > 0) {
    const peak = quantile(target.peaks, 0.5);
    result.peakMiB = peak / 1024;
    if (floor && floor.peaks.length > 0) {
      result.peakRatio = peak / quantile(floor.peaks, 0.5);
      if (target.memoryGoal) result.memoryGoalMet = result.peakRatio <= target.memoryGoal;
    }
  }
  return result;
}

const verdict = (met: boolean | undefined) => (met === undefined ? '' : met ? 'met' : 'NOT met');

function formatTable(results: RowResult[]): string {
  const header = ['row', 'vs', 'ms', 'p25-p75', 'ratio', 'p25-p75', 'goal', '', 'RSS MiB', 'ratio', 'goal', ''];
  const lines: (string[] | string)[] = [header];
  for (const r of results) {
    if (r.unavailable) {
      lines.push(`${r.name}: not available: ${r.unavailable}`);
      continue;
    }
    const { ms, ratio } = r as Required<Pick<RowResult, 'ms'>> & RowResult;
    lines.push([
      r.name,
      r.floor ?? '',
      ms.median.toFixed(1),
      `${ms.p25.toFixed(1)}-${ms.p75.toFixed(1)}`,
      ratio ? `${ratio.median.toFixed(2)}x` : '',
      ratio ? `${ratio.p25.toFixed(2)}-${ratio.p75.toFixed(2)}` : '',
      r.timeGoal ? `${r.timeGoal.toFixed(2)}x` : '',
      verdict(r.timeGoalMet),
      r.peakMiB === undefined ? '' : r.peakMiB.toFixed(1),
      r.peakRatio === undefined ? '' : `${r.peakRatio.toFixed(2)}x`,
      r.memoryGoal && r.peakRatio !== undefined ? `${r.memoryGoal.toFixed(2)}x` : '',
      verdict(r.memoryGoalMet),
    ]);
    if (r.alsoVs) {
      const { floor, ratio: other } = r.alsoVs;
      lines.push(['  the same runs', floor, '', '', `${other.median.toFixed(2)}x`, `${other.p25.toFixed(2)}-${other.p75.toFixed(2)}`, '', '', '', '', '', '']);
    }
  }
  const cells = lines.filter((line): line is string[] => Array.isArray(line));
  const widths = header.map((_, column) => Math.max(...cells.map((line) => line[column].length)));
  const leftAligned = 2; // name and floor; numbers are right-aligned
  return lines
    .map((line) => (typeof line === 'string' ? line : line.map((cell, column) => (column < leftAligned ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ').trimEnd()))
    .join('\n');
}

function positiveCount(text: string, option: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > 1000) throw new Error(`${option} must be a whole number from ${min} to 1000, got "${text}"`);
  return value;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '30' }, 'memory-rounds': { type: 'string', default: '5' }, json: { type: 'string' }, bundle: { type: 'string', default: BUILT } } });
  const bundlePath = path.resolve(values.bundle);
  const rounds = positiveCount(values.rounds, '--rounds', 1);
  const gnuTime = hasGnuTime();
  const memoryRounds = gnuTime ? positiveCount(values['memory-rounds'], '--memory-rounds', 0) : 0;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-bench-'));
  let receiver: Receiver | undefined;
  const abandon = () => {
    // Interrupted: nothing is waited for, everything the bench started is ended.
    receiver?.stop();
    for (const pid of processesMentioning(dir, new Set([process.pid]))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // it ended meanwhile
      }
    }
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', abandon).once('SIGTERM', abandon);
  try {
    const tls = makeTestCa(dir);
    receiver = await startReceiver(tls);
    const plainEnv: Env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const caEnv: Env = { ...plainEnv, NODE_EXTRA_CA_CERTS: tls.caFile };
    const configDir = path.join(dir, 'config');
    const template = path.join(dir, 'template');
    mkdirSync(configDir, { mode: 0o700 });
    mkdirSync(template, { mode: 0o700 }); // as an installer leaves it, so a failed first run still leaves one
    const settings = ['--state-dir', template, '--config-dir', configDir];
    // The state every run starts from: what one `start` leaves, as on any machine after its first run.
    const first = execute({ argv: node(bundlePath, 'start', '--endpoint', receiver.urls.https, ...settings), env: caEnv });
    if (first.status !== 0) console.warn(`the template run of start ${reasonOf(first)}`);
    const sample = execute({ argv: node(bundlePath, 'start', '--dry-run', '--endpoint', receiver.urls.https, ...settings), env: plainEnv });
    const sampleLine = sample.stdout.split('\n').find((line) => line.startsWith('{'));
    const bench: Bench = { bundle: bundlePath, dir, receiver, plainEnv, caEnv, configDir, template, sampleEvent: sampleLine ? JSON.parse(sampleLine) : undefined, body: floorBody() };

    const { floors, units: all } = units(bench);
    const rows = all.flatMap((unit) => unit.rows);
    const loadBefore = os.loadavg()[0];
    const startedAt = Date.now();
    // The first round is untimed: it fills the page cache and checks every row once.
    let active = await playRound(all, untimed, floors, 'in the untimed first round');
    for (let round = 1; round <= rounds; round++) active = await playRound(shuffled(active), timed, floors, `in round ${round}`);
    const memory = peakKiB(dir);
    for (let round = 1; round <= memoryRounds; round++) active = await playRound(shuffled(active), memory, floors, `in memory round ${round}`);
    const seconds = (Date.now() - startedAt) / 1000;
    const leftovers = await settle(dir, new Set([process.pid, receiver.pid]));

    const results = rows.map(summarize);
    const bundle = readFileSync(bundlePath);
    const report = {
      date: new Date().toISOString(),
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAverage: { before: loadBefore, after: os.loadavg()[0] },
      rounds,
      memoryRounds,
      seconds,
      bundle: { path: bundlePath, bytes: bundle.length, gzipBytes: gzipSync(bundle).length, modified: statSync(bundlePath).mtime.toISOString() },
      rows: results,
    };
    console.log(
      `npm run bench, ${report.date.slice(0, 16).replace('T', ' ')} UTC: node ${report.node}, ${report.platform}, ${report.cpus} cpus (${report.cpuModel}), ` +
        `1-min load ${loadBefore.toFixed(2)} before, ${report.loadAverage.after.toFixed(2)} after; ${rounds} interleaved rounds, ${memoryRounds} memory rounds, ${seconds.toFixed(0)} s`,
    );
    const shownPath = path.relative(process.cwd(), bundlePath).startsWith('..') ? bundlePath : path.relative(process.cwd(), bundlePath);
    console.log(`compiled file ${shownPath}: ${bundle.length.toLocaleString('en')} bytes (${report.bundle.gzipBytes.toLocaleString('en')} gzipped)\n`);
    console.log(formatTable(results));
    console.log(`
ms: median wall time of a run, spawn to exit, and its quartiles (p25-p75). ratio: median and
quartiles of the per-round ratio to the row under "vs", measured in the same round; a goal is met
when that median is at most the goal. The https: rows and the https: POST floor trust the test CA
through NODE_EXTRA_CA_CERTS. That makes Node build its root store at start-up, which an https:
process does anyway at its first connection (compare the two https: POST floors) and node -e 0
never does; so flush is divided by the node -e 0 without it (the ratio to the one with it below).
RSS: median peak RSS over the memory rounds (GNU time, from the child's wait4 rusage), as a ratio
to the same floor's. /bin/true: starting and reaping a process from the bench, inside every row.
${gnuTime ? '' : `Peak memory was not measured: ${GNU_TIME} (Debian's \`time\` package) is missing.\n`}The machine may be shared: run it again before reading much into a few hundredths.`);
    if (leftovers.length > 0) console.log(`\nkilled processes the runs left behind: ${leftovers.join(', ')}`);
    if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    receiver?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  console.error(`bench broke: ${error.message}`);
  process.exitCode = 1;
});
