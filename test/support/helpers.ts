import { openStore, type Store } from '../../src/after-consent/store/store.ts';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { Context } from '../../src/before-consent/config/context.ts';
import { startEndpoint, type Behavior, type Endpoint, type EndpointOptions } from '../../scripts/endpoint.ts';

export const PROJECT_DIR = path.resolve(__dirname, '../..');
/**
 * The file the tests run: built from the current src/ once, before the suites (npm's pretest),
 * so a test never runs a stale dist/. test/built/build.test.ts checks the committed dist/ separately.
 */
export const BUNDLE = process.env.TEST_BUNDLE ?? path.join(PROJECT_DIR, '.cache/test/anonymous-statistics.js');
/** The Node.js that runs the built file: TEST_NODE when scripts/test-node-versions.ts sets it. */
export const NODE_UNDER_TEST = process.env.TEST_NODE ?? process.execPath;
const TRAP = path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs');
/** Where the trap records any attempt to reach a non-loopback address (one file per test process). */
export const TRAP_LOG = path.join(os.tmpdir(), `anon-stats-trap-${process.pid}.log`);

/**
 * The TMPDIR of every run of the built file: a state dir that is unusable falls back to
 * <tmpdir>/<product>-<uid>, which must be this test process's own, not a /tmp dir shared with
 * every other test run on the machine.
 */
let bundleTmpdir: string | undefined;
function runTmpdir(): string {
  if (bundleTmpdir === undefined) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-tmpdir-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    bundleTmpdir = dir;
  }
  return bundleTmpdir;
}

export const IS_ROOT = process.getuid?.() === 0;

/**
 * node:test's skip for a root-only test: skipped, with the reason, on a developer's machine
 * without root; under CI (CI=true) it runs, and fails at its first step that needs root.
 */
export function unlessRoot(why: string): string | false {
  return !IS_ROOT && !process.env.CI ? `${why}: needs root` : false;
}

export function trapViolations(): string {
  try {
    return readFileSync(TRAP_LOG, 'utf8');
  } catch {
    return '';
  }
}

export function tempDir(t: TestContext, prefix = 'anon-stats-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  // A detached --background sender may still be writing (or, started late on a loaded machine,
  // re-creating its state dir) when a test ends: retry, and leave the dir rather than fail the test.
  t.after(() => {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
    } catch {
      // left in the system's temp dir
    }
  });
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

/** What each folder of a state dir's outbox holds, by file name. */
export function outboxFolders(stateDir: string): Record<'tmp' | 'new' | 'cur' | 'corrupt', string[]> {
  const names = (folder: string) => {
    const dir = path.join(stateDir, 'outbox', folder);
    return existsSync(dir) ? readdirSync(dir).sort() : [];
  };
  return { tmp: names('tmp'), new: names('new'), cur: names('cur'), corrupt: names('corrupt') };
}

/** The events waiting in a state dir's outbox (new/), parsed. */
export function waitingEvents(stateDir: string): Record<string, any>[] {
  return outboxFolders(stateDir).new.map((name) => JSON.parse(readFileSync(path.join(stateDir, 'outbox', 'new', name), 'utf8')));
}

/**
 * Resolves once `check()` holds, looking again whenever an entry of `dir` changes (inotify):
 * a wait on the event itself, not on a timer. Rejects after `limitMs` with what it waited for.
 */
export function whenDir(dir: string, check: () => boolean, what: string, limitMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = watch(dir);
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`still waiting after ${limitMs} ms for ${what}`));
    }, limitMs);
    const look = () => {
      if (!check()) return;
      clearTimeout(timer);
      watcher.close();
      resolve();
    };
    watcher.on('change', look);
    look();
  });
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

/**
 * runBundle under a wrapper that changes how it runs: `['setpriv', '--reuid=65534', ...]`,
 * `['prlimit', '--fsize=1024']`. The wrapper may run it as another user, so it runs the copies
 * that any user can reach.
 */
export function runBundleUnder(wrapper: string[], args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const { node, bundle, trap } = reachableByAnyUser();
  return runCommand(wrapper[0], [...wrapper.slice(1), node, bundle, ...args], { NODE_OPTIONS: `--require ${trap}`, ...env });
}

let reachable: { node: string; bundle: string; trap: string } | undefined;
/**
 * What a test runs as another user (node, the built file, the loopback-only trap), in a 0755 dir
 * of its own: a checkout in a private dir (a `mktemp -d` clone, a 0700 home) is out of that
 * user's reach, and so is a node fetched under root's home. Made once per test process.
 */
export function reachableByAnyUser(): { node: string; bundle: string; trap: string } {
  if (reachable === undefined) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-shared-'));
    chmodSync(dir, 0o755);
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const copy = (file: string, name: string) => {
      const target = path.join(dir, name);
      copyFileSync(file, target);
      chmodSync(target, 0o755);
      return target;
    };
    // node is large and never rewritten in place: a hard link where the file system allows one.
    const link = (file: string, name: string) => {
      try {
        linkSync(file, path.join(dir, name));
        return path.join(dir, name);
      } catch {
        return copy(file, name);
      }
    };
    reachable = { node: link(NODE_UNDER_TEST, 'node'), bundle: copy(BUNDLE, 'anonymous-statistics.js'), trap: copy(TRAP, 'no-remote-trap.cjs') };
  }
  return reachable;
}

/** runBundle for another build of the tool, such as a vendor flavour a test built. */
export function runBuilt(file: string, args: string[], env: Record<string, string> = {}, node = NODE_UNDER_TEST): Promise<CliResult> {
  return runCommand(node, [file, ...args], env);
}

function runCommand(command: string, args: string[], env: Record<string, string>): Promise<CliResult> {
  const started = performance.now();
  const fullEnv = bundleEnv(env);
  return new Promise((resolve) => {
    execFile(command, args, { env: fullEnv, timeout: 20000, maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

function bundleEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: `--require ${TRAP}`, TRAP_LOG, TMPDIR: runTmpdir(), ...env };
}

/** The built file as a child process of ours, for tests that kill it; `exited` resolves once it is gone (reaped). */
export function spawnBundle(args: string[], env: Record<string, string> = {}): ChildProcess & { exited: Promise<number | NodeJS.Signals> } {
  const child = spawn(NODE_UNDER_TEST, [BUNDLE, ...args], { env: bundleEnv(env), stdio: 'ignore' });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? (code as number))));
  return Object.assign(child, { exited });
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

/** A state dir opened (made and tagged) as a run of ours opens it, for planting events in its outbox. */
export function openTestStore(state: string): Store {
  const { store: opened, refused } = openStore([{ dir: state, makeParents: true }], process.getuid?.(), Date.now());
  if (!opened) throw new Error(`cannot open ${state}: ${JSON.stringify(refused)}`);
  return opened;
}
