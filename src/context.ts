import os from 'node:os';
import type { Platform } from './detect/index.ts';
import type { Env } from './settings.ts';
import { VENDOR } from './vendor-config.ts';
import type { VendorConfig } from './vendor.ts';

export const PROGRAM = 'anonymous-statistics';

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
  /** A number in [0, 1) for jitter. */
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  pid: number;
  /** Our uid, to check that the state dir is ours; undefined where there are no uids. */
  uid: number | undefined;
  isProcessAlive: (pid: number) => boolean;
  /** Starts this same file with `args`, detached from our session and stdio, and does not wait. */
  spawnDetached: (args: readonly string[]) => void;
}

declare const TOOL_VERSION: string | undefined;

/**
 * The only place that reads process state, the clock and the random source. `exit` ends the
 * process as soon as stdout is flushed: a closing socket or a library timer must not hold a
 * daemon's hook after the work is done.
 */
export function createContext(): { ctx: Context; exit: (code: number) => void } {
  let usedStdout = false;
  const ctx: Context = {
    env: process.env,
    now: () => new Date(),
    elapsedMs: () => performance.now(),
    // Loaded on first use: node:crypto pulls in streams and costs an opted-out run milliseconds.
    uuid: () => (require('node:crypto') as typeof import('node:crypto')).randomUUID(),
    stdout: (text) => {
      usedStdout = true;
      process.stdout.write(text);
    },
    stderr: (text) => void process.stderr.write(text),
    platform: () => ({ type: os.type(), release: os.release(), machine: os.machine() }),
    vendor: VENDOR,
    toolVersion: typeof TOOL_VERSION === 'string' ? TOOL_VERSION : 'development',
    armDeadline: (ms) => void setTimeout(() => process.exit(0), Math.max(0, ms)).unref(),
    random: Math.random,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    pid: process.pid,
    uid: process.getuid?.(),
    isProcessAlive: (pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    },
    spawnDetached: (args) => {
      const { spawn } = require('node:child_process') as typeof import('node:child_process');
      // A new session (detached), so closing the caller's terminal does not take the child along.
      spawn(process.execPath, [process.argv[1], ...args], { detached: true, stdio: 'ignore', windowsHide: true }).unref();
    },
  };
  // Touching process.stdout builds a stream (and loads node:stream): only when it was used.
  const exit = (code: number) => (usedStdout ? process.stdout.write('', () => process.exit(code)) : process.exit(code));
  return { ctx, exit };
}

/** A line on stderr when TELEMETRY_DEBUG is set: why an event was skipped or not delivered. */
export function debug(ctx: Context, line: string): void {
  if (ctx.env.TELEMETRY_DEBUG) ctx.stderr(`${PROGRAM}: ${line}\n`);
}
