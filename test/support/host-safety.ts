import assert from 'node:assert/strict';
import { execFileSync, spawn, type StdioOptions } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { BUNDLE, IS_ROOT, makeRoot, NODE_UNDER_TEST, PROJECT_DIR, tempDir, TRAP_LOG } from './helpers.ts';

/**
 * Shared by the suites under test/built/host-safety/: runs of the built file that a test can
 * hard-kill and give a cwd, a receiver that answers by path, a full before/after picture of a
 * directory, and the helpers that set up another user's files.
 */

export const NOBODY = 65534;
export const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
/** A port nothing listens on: a run against it queues its event. */
export const DEAD_ENDPOINT = 'http://127.0.0.1:9';
export const MACHINE = { 'etc/machine-id': '00112233445566778899aabbccddeeff\n', 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n' };
/** Process start and a loaded 2-core machine, on top of a run's --timeout. */
export const SLACK_MS = 1000;

/** Root-only suites fail, never skip, where they cannot run: the races they show need root. */
export function requireRoot(why: string): void {
  assert.ok(IS_ROOT, `${why}: this test must run as root (CI does); it proves what a root run does`);
}

export interface HardRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the test had to kill it: the run did not end on its own. */
  killed: boolean;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface HardRunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Killed (SIGKILL) after this long, so the suite itself can never hang. */
  killAfterMs?: number;
  /** Prepended to the command line: AS_NOBODY, or strace. */
  wrapper?: string[];
  /** stdin, stdout, stderr of the run (default: ignore, pipe, pipe). */
  stdio?: StdioOptions;
}

/** The built file as runBundle runs it (minimal env, loopback trap), with a hard kill and a cwd. */
export function runHard(args: string[], options: HardRunOptions = {}): Promise<HardRun> {
  const { env = {}, cwd = PROJECT_DIR, killAfterMs = 5000, wrapper = [], stdio = ['ignore', 'pipe', 'pipe'] } = options;
  const command = [...wrapper, NODE_UNDER_TEST, BUNDLE, ...args];
  const fullEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: `--require ${path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs')}`, TRAP_LOG, ...env };
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { env: fullEnv, cwd, stdio });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk) => (stdout += chunk));
    child.stderr?.on('data', (chunk) => (stderr += chunk));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, killAfterMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, killed, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** The run ended by itself, with exit 0, within `limitMs`. */
export function assertEndedWithin(run: HardRun, limitMs: number, what: string): void {
  assert.equal(run.killed, false, `${what}: still running after ${Math.round(run.ms)} ms, killed by the test`);
  assert.equal(run.code, 0, `${what}: exit ${run.code}; ${run.stderr}`);
  assert.ok(run.ms < limitMs, `${what}: took ${Math.round(run.ms)} ms, limit ${Math.round(limitMs)} ms`);
}

/** How long a run that does nothing costs on this machine right now: the baseline for time limits. */
export async function trivialRunMs(t: TestContext): Promise<number> {
  const run = await runHard(['start', '--dry-run', '--root', makeRoot(t, MACHINE)], { killAfterMs: 20_000 });
  assert.equal(run.code, 0, run.stderr);
  return run.ms;
}

export async function statusJson(args: string[], env: Record<string, string> = {}): Promise<Record<string, any>> {
  const run = await runHard(['status', '--json', ...args], { env });
  assert.equal(run.code, 0, `status --json: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** status --json names `dir` among the refused state dirs, with a reason, and does not use it. */
export function assertRefused(status: Record<string, any>, dir: string): void {
  assert.notEqual(status.state_dir, dir, `status says ${dir} is the state dir in use`);
  const refused = (status.unusable_state_dirs ?? []) as { dir: string; reason: string }[];
  const entry = refused.find((candidate) => candidate.dir === dir);
  assert.ok(entry, `status --json does not name ${dir} as unusable: ${JSON.stringify(refused)}`);
  assert.ok(typeof entry.reason === 'string' && entry.reason.length > 0, 'with a reason');
}

/**
 * Every entry below `dir` (dir itself included) with its type, owner, mode, size, mtime and
 * content or link target: two equal pictures mean nothing was read-and-rewritten, moved,
 * deleted, added or re-dated.
 */
export function picture(dir: string): Record<string, string> {
  const entries: Record<string, string> = {};
  const visit = (rel: string) => {
    const full = path.join(dir, rel);
    const stat = lstatSync(full);
    const head = `${stat.uid}:${stat.gid} ${stat.mode.toString(8)} ${stat.size} ${stat.mtimeMs}`;
    if (stat.isSymbolicLink()) entries[rel] = `${head} -> ${readlinkSync(full)}`;
    else if (stat.isFile()) entries[rel] = `${head} ${readFileSync(full, 'base64')}`;
    else entries[rel] = head;
    if (stat.isDirectory()) for (const name of readdirSync(full).sort()) visit(path.join(rel, name));
  };
  visit('.');
  return entries;
}

export interface ReceivedEvent {
  path: string;
  status: number;
  uuids: string[];
}

export interface Receiver {
  url: string;
  requests: ReceivedEvent[];
  /** Uuids the receiver answered 2xx for, in arrival order. */
  accepted(): string[];
}

/**
 * A capture receiver on 127.0.0.1 whose answer `statusFor(path, uuids)` scripts per request
 * (a /batch/ that is missing, a key that was rotated, one event it refuses).
 */
export async function receiver(t: TestContext, statusFor: (path: string, uuids: string[]) => number): Promise<Receiver> {
  const requests: ReceivedEvent[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let uuids: string[] = [];
      try {
        const body = JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8'));
        uuids = (Array.isArray(body.batch) ? body.batch : [body]).map((event: { uuid?: unknown }) => String(event.uuid));
      } catch {
        uuids = [];
      }
      const pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
      const status = statusFor(pathname, uuids);
      requests.push({ path: pathname, status, uuids });
      res.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{"status":1}' : '{"type":"error"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    accepted: () => requests.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.uuids),
  };
}

/**
 * A state dir made by the tool itself (a real `start` against a dead port), then `count` events
 * in all: copies of that run's own queued event, each with a uuid and file name of its own.
 * Returns the uuids waiting.
 */
export async function seedOutbox(t: TestContext, state: string, root: string, count: number): Promise<string[]> {
  const first = await runHard(['start', '--timeout', '3000', '--state-dir', state, '--endpoint', DEAD_ENDPOINT, '--root', root], { killAfterMs: 20_000 });
  assert.equal(first.code, 0, first.stderr);
  const waiting = path.join(state, 'outbox', 'new');
  const [name] = readdirSync(waiting);
  assert.ok(name, 'the first run queued its event in outbox/new');
  const event = JSON.parse(readFileSync(path.join(waiting, name), 'utf8'));
  const uuids = [event.uuid as string];
  const base = Date.parse(event.timestamp);
  for (let i = 1; i < count; i++) {
    const uuid = randomUUID();
    const timestamp = new Date(base - i * 1000).toISOString();
    writeFileSync(path.join(waiting, `${String(base - i * 1000).padStart(13, '0')}-${uuid}.json`), JSON.stringify({ ...event, uuid, timestamp }), { mode: 0o600 });
    uuids.push(uuid);
  }
  t.diagnostic(`seeded ${count} events`);
  return uuids;
}

/** A dir of `count` root-owned files dated `minutes` ago: what a hijacked cleanup would delete. */
export function targetDir(t: TestContext, count: number, minutes = 20): string {
  const dir = path.join(tempDir(t, 'anon-stats-target-'), 'precious');
  mkdirSync(dir, { mode: 0o755 });
  for (let i = 0; i < count; i++) writeFileSync(path.join(dir, `file-${i}`), `precious ${i}\n`);
  execFileSync('touch', ['-d', `${minutes} minutes ago`, ...readdirSync(dir).map((name) => path.join(dir, name))]);
  return dir;
}

/** A temp dir others may enter (0755): where another user's dir is made for a root-run race. */
export function openTempDir(t: TestContext): string {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  return dir;
}

/** Compiles a C file of test/support into a temp dir; a missing gcc fails the test. */
export function compileC(t: TestContext, source: string): string {
  const out = path.join(openTempDir(t), path.basename(source, '.c'));
  execFileSync('gcc', ['-O2', '-Wall', '-o', out, path.join(PROJECT_DIR, 'test/support', source)]);
  chmodSync(out, 0o755);
  return out;
}
