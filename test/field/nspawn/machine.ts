/**
 * A real Debian 12 with a real systemd as PID 1, for the tests that must meet the system where
 * the product is used: a root built by mmdebstrap from Debian's own packages (its own nodejs
 * included), cached between runs, booted by systemd-nspawn over a throw-away overlay.
 *
 * The container shares the host's network namespace (no --private-network), so the receiver the
 * test runs on the host's 127.0.0.1 is the container's 127.0.0.1 too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

const SUITE = 'bookworm';
/** systemd and dbus to boot; nodejs is what a Debian user's node is. */
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'nodejs'];
/**
 * Nothing in the root may reach out on its own: apt's timers would fetch package lists at boot.
 * (Part of the cache key, like the package list.)
 */
const CUSTOMIZE = ['apt-daily.timer', 'apt-daily-upgrade.timer'].map((unit) => `ln -sf /dev/null "$1/etc/systemd/system/${unit}"`);
/** Outside the checkout: a fresh clone reuses it, `rm -rf` it to rebuild. */
export const CACHE_DIR = process.env.ANONYMOUS_STATISTICS_NSPAWN_CACHE ?? '/var/cache/anonymous-statistics/nspawn';
const HOST_TOOLS = ['mmdebstrap', 'systemd-nspawn', 'nsenter'];
/** The environment every command inside starts from (nothing of the host's leaks in). */
const INSIDE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8'];

/** Why this machine cannot run the harness, or undefined when it can. */
export function unavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'systemd-nspawn needs Linux';
  if (process.getuid?.() !== 0) return 'booting a container with systemd-nspawn needs root';
  const missing = HOST_TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) return `missing ${missing.join(', ')} (apt-get install mmdebstrap systemd-container)`;
  return undefined;
}

/** The cached root for this package list, built first if there is none. */
export function debianRoot(log: (line: string) => void): string {
  const key = createHash('sha256').update(JSON.stringify({ SUITE, PACKAGES, CUSTOMIZE })).digest('hex').slice(0, 16);
  const root = path.join(CACHE_DIR, `${SUITE}-${key}`);
  if (existsSync(path.join(root, 'usr/bin/node'))) return root;
  mkdirSync(CACHE_DIR, { recursive: true });
  const building = `${root}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const started = Date.now();
  const args = ['--variant=minbase', `--include=${PACKAGES.join(',')}`, ...CUSTOMIZE.map((hook) => `--customize-hook=${hook}`), SUITE, building];
  const built = spawnSync('mmdebstrap', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (built.status !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(`mmdebstrap ${args.join(' ')} failed (${built.status ?? built.signal}):\n${built.stderr.slice(-3000)}`);
  }
  // A concurrent run may have finished first; either root is as good.
  try {
    renameSync(building, root);
  } catch {
    rmSync(building, { recursive: true, force: true });
  }
  log(`built ${root} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return root;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Machine {
  /** Runs argv inside the container as root, in a clean environment plus `env`. */
  run(argv: string[], options?: { env?: Record<string, string>; input?: string | Buffer; timeoutMs?: number }): Promise<RunResult>;
  /** Like run, and throws unless it exits 0. */
  must(argv: string[], options?: { env?: Record<string, string>; input?: string | Buffer; timeoutMs?: number }): Promise<string>;
  /** Writes a file inside the container. */
  write(file: string, content: string, mode?: string): Promise<void>;
  /** The container's console (systemd's boot messages), for a failure's diagnosis. */
  console(): string;
  /** False once the container has ended (on its own, or by shutdown()). */
  running(): boolean;
  shutdown(): Promise<void>;
}

/** Boots the root (read-only, under a tmpfs overlay) and waits until systemd says the boot is done. */
export async function boot(root: string, deadlineMs = 60000): Promise<Machine> {
  let consoleText = '';
  const nspawn: ChildProcess = spawn(
    'systemd-nspawn',
    ['--quiet', '--keep-unit', '--register=no', '--volatile=overlay', '--console=pipe', `--machine=anon-stats-${process.pid}`, '-D', root, '-b'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => nspawn.once('exit', () => resolve()));
  for (const stream of [nspawn.stdout, nspawn.stderr]) stream?.on('data', (chunk: Buffer) => (consoleText = (consoleText + chunk.toString('utf8')).slice(-20000)));

  const deadline = Date.now() + deadlineMs;
  const leader = await (async () => {
    while (Date.now() < deadline && nspawn.exitCode === null) {
      // nspawn's one child is the container's PID 1; systemctl can talk to it once its private
      // bus socket exists (seen through the leader's root).
      const child = readFirst(`/proc/${nspawn.pid}/task/${nspawn.pid}/children`).trim().split(/\s+/)[0];
      if (child && readFirst(`/proc/${child}/comm`).trim() === 'systemd' && existsSync(`/proc/${child}/root/run/systemd/private`)) return Number(child);
      await delay(50);
    }
    throw new Error(`the container did not start systemd:\n${consoleText}`);
  })();

  const run: Machine['run'] = (argv, options = {}) =>
    new Promise((resolve) => {
      const env = [...INSIDE_ENV, ...Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`)];
      const child = spawn('nsenter', ['-t', String(leader), '-m', '-u', '-i', '-n', '-p', '--', '/usr/bin/env', '-i', ...env, ...argv], {
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: options.timeoutMs ?? 60000,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      // A command that exits without reading its input must not fail the write.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input ?? '');
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
  const must: Machine['must'] = async (argv, options) => {
    const result = await run(argv, options);
    if (result.code !== 0) throw new Error(`${argv.join(' ')} exited ${result.code}:\n${result.stdout}${result.stderr}`);
    return result.stdout;
  };
  const machine: Machine = {
    run,
    must,
    write: async (file, content, mode = '0644') => {
      await must(['sh', '-c', 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"', 'write', file, mode], { input: content });
    },
    console: () => consoleText,
    running: () => nspawn.exitCode === null && nspawn.signalCode === null,
    shutdown: async () => {
      if (nspawn.exitCode !== null) return;
      // SIGTERM asks nspawn for an orderly poweroff of the container; the overlay goes with it.
      nspawn.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), delay(20000).then(() => false)]);
      if (!stopped) {
        nspawn.kill('SIGKILL');
        await exited;
      }
    },
  };
  try {
    // Blocks until the boot job queue is empty: "running", or "degraded" if a unit failed.
    const state = await run(['systemctl', 'is-system-running', '--wait'], { timeoutMs: Math.max(1000, deadline - Date.now()) });
    if (!/^(running|degraded)\s*$/.test(state.stdout)) throw new Error(`boot ended "${state.stdout.trim()}" ${state.stderr}`);
  } catch (error) {
    await machine.shutdown();
    throw new Error(`${(error as Error).message}\n${consoleText}`);
  }
  return machine;
}

function readFirst(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Polls `check` until it returns a value other than undefined, or throws `what` at the deadline. */
export async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}
