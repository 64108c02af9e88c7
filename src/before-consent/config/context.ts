import { nodeFs, nodeOs } from '../node-builtins.ts';
import type { Env } from './settings.ts';
import { uuidV4FromBytes } from '../../shared/uuid.ts';
import { VENDOR } from './vendor-config.ts';
import { commandName, type VendorConfig } from './vendor.ts';

/** Set in the environment of the detached child that --background starts (internal). */
const BACKGROUND_CHILD = 'ANONYMOUS_STATISTICS_BACKGROUND_CHILD';

/** What Node's `os` module says about the running machine (used when the root is `/`). */
export interface Platform {
  type: string;
  release: string;
  machine: string;
}

/** Everything a run touches outside its own code. Tests build one literal; nothing is patched. */
export interface Context {
  env: Env;
  now: () => Date;
  /** Milliseconds since the process started, Node's own start-up included: the budget's clock. */
  elapsedMs: () => number;
  uuid: () => string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Asked for only once a run goes past the opt-out check. */
  platform: () => Platform;
  vendor: VendorConfig;
  toolVersion: string;
  /** Ends the process with exit code 0 once `ms` have passed, whatever is still pending. */
  armDeadline: (ms: number) => void;
  /** Runs `action` (synchronous) just before the deadline ends the process. */
  atDeadline: (action: () => void) => void;
  /** A number in [0, 1) for jitter. */
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  pid: number;
  /** Our uid, to check that the state dir is ours; undefined where there are no uids. */
  uid: number | undefined;
  isProcessAlive: (pid: number) => boolean;
  /** Starts this same file with `args`, detached from our session and stdio, and does not wait. Throws when it cannot be started. */
  spawnDetached: (args: readonly string[]) => void;
  /** A line on stderr when TELEMETRY_DEBUG is set: why an event was skipped or not delivered. */
  debug: (line: string) => void;
  /** Where temporary files go (TMPDIR): the last fallback for a state dir. */
  tmpdir: () => string;
  /** The file this run was started as (the installed copy), to find the installer's settings beside it. */
  scriptPath: string | undefined;
  /** True in the detached child that --background started. */
  backgroundChild: boolean;
  stderrIsTTY: () => boolean;
  /** This machine's host name and the user running us, for scrubbing free text. */
  hostName: () => string;
  userName: () => string | undefined;
  /** Whether we run under CI, and which (ci-info, bundled). */
  ci: () => { isCI: boolean; name: string | null };
}

declare const TOOL_VERSION: string | undefined;

/**
 * The only place that reads process state, the clock and the random source. `exit` ends the
 * process as soon as stdout is flushed: a closing socket or a library timer must not hold a
 * daemon's hook after the work is done.
 */
export function createContext(): { ctx: Context; exit: (code: number) => void } {
  const stdout = stdoutWriter();
  const beforeDeadline: (() => void)[] = [];
  // A --background child must finish its send even when a service manager, stopping the unit
  // that started it, signals the whole cgroup: its own deadline still bounds it.
  if (process.env[BACKGROUND_CHILD]) for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.on(signal, () => undefined);
  const ctx: Context = {
    env: process.env,
    now: () => new Date(),
    // process.uptime() rather than performance.now(): the perf_hooks set-up alone costs ~2 ms.
    elapsedMs: () => process.uptime() * 1000,
    uuid: randomUuid,
    stdout: stdout.write,
    stderr: (text) => void process.stderr.write(text),
    platform: () => {
      const os = nodeOs();
      return { type: os.type(), release: os.release(), machine: os.machine() };
    },
    vendor: VENDOR,
    toolVersion: typeof TOOL_VERSION === 'string' ? TOOL_VERSION : 'development',
    armDeadline: (ms) =>
      void setTimeout(() => {
        for (const action of beforeDeadline) action();
        process.exit(0);
      }, Math.max(0, ms)).unref(),
    atDeadline: (action) => void beforeDeadline.push(action),
    random: Math.random,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    pid: process.pid,
    uid: process.getuid?.(),
    isProcessAlive,
    spawnDetached: (args) => spawnDetached([process.execPath, process.argv[1], ...args], { ...process.env, [BACKGROUND_CHILD]: '1' }),
    debug: (line) => {
      if (process.env.TELEMETRY_DEBUG) process.stderr.write(`${commandName(VENDOR)}: ${line}\n`);
    },
    tmpdir: () => nodeOs().tmpdir(),
    scriptPath: process.argv[1],
    backgroundChild: Boolean(process.env[BACKGROUND_CHILD]),
    // tty.isatty(2) rather than process.stderr.isTTY, which builds the stream to answer.
    stderrIsTTY: () => (require('node:tty') as typeof import('node:tty')).isatty(2),
    hostName: () => nodeOs().hostname(),
    userName: () => {
      try {
        return nodeOs().userInfo().username;
      } catch {
        return undefined; // a uid without a passwd entry, as in some containers
      }
    },
    // ci-info reads process.env when loaded, which is why it is loaded here and only on demand.
    ci: () => {
      const info = require('ci-info') as typeof import('ci-info');
      return { isCI: info.isCI, name: info.name };
    },
  };
  const exit = (code: number) => stdout.whenWritten(() => process.exit(code));
  return { ctx, exit };
}

/**
 * A UUID v4 from the kernel's CSPRNG. Loading node:crypto for randomUUID() costs every run
 * ~4 ms (measured with npm run bench); 16 bytes of /dev/urandom cost microseconds.
 */
function randomUuid(): string {
  let bytes: Buffer;
  try {
    bytes = Buffer.alloc(16);
    const { closeSync, openSync, readSync } = nodeFs();
    const fd = openSync('/dev/urandom', 'r');
    try {
      if (readSync(fd, bytes, 0, 16, null) !== 16) throw new Error('short read');
    } finally {
      closeSync(fd);
    }
  } catch {
    return (require('node:crypto') as typeof import('node:crypto')).randomUUID();
  }
  return uuidV4FromBytes(bytes);
}

/** How often a full stdout pipe is tried again; the run's deadline ends the waiting. */
const STDOUT_RETRY_MS = 10;

/**
 * Writes to fd 1 without building process.stdout: on a pipe (a CLI's `ID=$(... command-start)`)
 * that is a net.Socket, and building it loads node:net and node:stream, most of what an
 * opted-out command-start costs. A pipe is written through a non-blocking description of its
 * own (reopened through /proc), so a pipe nobody reads makes the run wait only until its
 * deadline, never in a write that no timer can interrupt.
 */
function stdoutWriter(): { write: (text: string) => void; whenWritten: (then: () => void) => void } {
  let pending = Buffer.alloc(0);
  let target: number | undefined;
  const waiting: (() => void)[] = [];
  const pump = (): void => {
    target ??= nonBlockingStdout();
    while (pending.length > 0) {
      try {
        pending = pending.subarray(nodeFs().writeSync(target, pending));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(pump, STDOUT_RETRY_MS);
          return;
        }
        pending = Buffer.alloc(0); // EPIPE and the like: nobody reads our output any more
      }
    }
    for (const then of waiting.splice(0)) then();
  };
  return {
    write: (text) => {
      const idle = pending.length === 0;
      pending = Buffer.concat([pending, Buffer.from(text)]);
      if (idle) pump();
    },
    whenWritten: (then) => {
      if (pending.length === 0) then();
      else waiting.push(then);
    },
  };
}

function nonBlockingStdout(): number {
  try {
    const { constants, fstatSync, openSync } = nodeFs();
    if (fstatSync(1).isFIFO()) return openSync('/proc/self/fd/1', constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    // no /proc, or fd 1 closed: the blocking descriptor it is
  }
  return 1;
}

/**
 * A zombie is not alive: where pid 1 does not reap (a container without an init), a killed
 * sender stays a zombie, and its claim would otherwise wait for the 11-minute rule.
 */
function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // The state follows the command name, which is in parentheses and may itself hold them.
    const stat = nodeFs().readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS, FreeBSD): kill(0) is all there is
  }
}

/**
 * Starts `command` in a session of its own with no stdio of ours, and does not wait for it: a
 * service manager stopping the caller's unit, or the caller's terminal closing, leaves it be.
 */
function spawnDetached(command: readonly string[], env: NodeJS.ProcessEnv): void {
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  const child = spawn(command[0], command.slice(1), { detached: true, stdio: 'ignore', windowsHide: true, env });
  // A program that cannot be started (ENOENT, EACCES, EAGAIN) leaves no pid at once, and an
  // 'error' event for later, when this run has moved on.
  child.on('error', () => undefined);
  if (child.pid === undefined) throw new Error(`cannot start the background sender ${command[0]}`);
  child.unref();
}
