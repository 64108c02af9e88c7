import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { Context } from '../src/config/context.ts';
import { commandName } from '../src/config/vendor.ts';
import { optOutAdvice } from '../src/consent/optout.ts';
import { startEndpoint, type Behavior, type Endpoint, type EndpointOptions } from '../scripts/endpoint.ts';

export const PROJECT_DIR = path.resolve(__dirname, '..');
/**
 * The file the tests run: built from the current src/ once, before the suites (npm's pretest),
 * so a test never runs a stale dist/. test/build.test.ts checks the committed dist/ separately.
 */
export const BUNDLE = process.env.TEST_BUNDLE ?? path.join(PROJECT_DIR, '.cache/test/anonymous-statistics.js');
/** The Node.js that runs the built file: TEST_NODE when scripts/test-node-versions.ts sets it. */
export const NODE_UNDER_TEST = process.env.TEST_NODE ?? process.execPath;
const TRAP = path.join(PROJECT_DIR, 'test/no-remote-trap.cjs');
/** Where the trap records any attempt to reach a non-loopback address (one file per test process). */
export const TRAP_LOG = path.join(os.tmpdir(), `anon-stats-trap-${process.pid}.log`);

export function trapViolations(): string {
  try {
    return readFileSync(TRAP_LOG, 'utf8');
  } catch {
    return '';
  }
}

export function tempDir(t: TestContext, prefix = 'anon-stats-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A root tree from a map of relative path to content; `{ link: target }` makes a symlink. */
export function makeRoot(t: TestContext, files: Record<string, string | { link: string }>): string {
  const root = tempDir(t, 'anon-stats-root-');
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    if (typeof content === 'string') writeFileSync(file, content);
    else symlinkSync(content.link, file);
  }
  return root;
}

/** Every file below dir, relative: proves a run created nothing. */
export function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.relative(dir, path.join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

export async function endpoint(t: TestContext, behavior?: Behavior | Behavior[], options?: EndpointOptions): Promise<Endpoint> {
  const server = await startEndpoint(behavior, options);
  t.after(() => server.close());
  return server;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs the built file as users do, with a minimal environment (no inherited DO_NOT_TRACK,
 * HOME or TELEMETRY_* surprises) and the loopback-only trap preloaded.
 */
export function runBundle(args: string[], env: Record<string, string> = {}, node = NODE_UNDER_TEST): Promise<CliResult> {
  return runBuilt(BUNDLE, args, env, node);
}

/** runBundle for another build of the tool, such as a vendor flavour a test built. */
export function runBuilt(file: string, args: string[], env: Record<string, string> = {}, node = NODE_UNDER_TEST): Promise<CliResult> {
  const started = performance.now();
  const fullEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: `--require ${TRAP}`, TRAP_LOG, ...env };
  return new Promise((resolve) => {
    execFile(node, [file, ...args], { env: fullEnv, timeout: 20000, maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** A Context literal for in-process tests: fixed clock and ids, captured output. */
export function fakeContext(overrides: Partial<Context> = {}): Context & { out: string[]; err: string[] } {
  const vendor = overrides.vendor ?? { product: 'test-daemon', endpoint: 'https://telemetry.invalid', apiKey: 'phc_test', configDir: '/dev/null/config', stateDir: '/dev/null/state' };
  const out: string[] = [];
  const err: string[] = [];
  let counter = 0;
  return {
    env: {},
    now: () => new Date('2026-01-02T03:04:05.000Z'),
    elapsedMs: () => 0,
    uuid: () => `00000000-0000-4000-8000-${String(++counter).padStart(12, '0')}`,
    stdout: (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    platform: () => ({ type: 'Linux', release: '6.1.0-test', machine: 'x86_64' }),
    vendor,
    // As createContext derives them: from the vendor, so a test's own vendor speaks its names.
    commandName: commandName(vendor),
    optOutAdvice: optOutAdvice(vendor),
    toolVersion: 'test',
    armDeadline: () => undefined,
    atDeadline: () => undefined,
    random: () => 0.5,
    sleep: async () => undefined,
    pid: 4242,
    uid: undefined,
    isProcessAlive: () => false,
    spawnDetached: () => undefined,
    backgroundChild: false,
    stderrIsTTY: () => false,
    hostName: () => 'test-host-name',
    userName: () => 'test-user-name',
    ci: () => ({ isCI: false, name: null }),
    debug: () => undefined,
    tmpdir: () => '/dev/null/tmp',
    scriptPath: undefined,
    out,
    err,
    ...overrides,
  };
}
