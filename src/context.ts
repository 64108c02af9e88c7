import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Platform } from './detect/index.ts';
import type { Env } from './settings.ts';
import { VENDOR } from './vendor-config.ts';
import type { VendorConfig } from './vendor.ts';

/** Everything a run touches outside its own code. Tests build one literal; nothing is patched. */
export interface Context {
  env: Env;
  now: () => Date;
  /** Milliseconds since the process started, Node's own start-up included: the budget's clock. */
  elapsedMs: () => number;
  uuid: () => string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  platform: Platform;
  vendor: VendorConfig;
  toolVersion: string;
  /** Ends the process with exit code 0 once `ms` have passed, whatever is still pending. */
  armDeadline: (ms: number) => void;
}

declare const TOOL_VERSION: string | undefined;

/** The only place that reads process state, the clock and the random source. */
export function createContext(): Context {
  return {
    env: process.env,
    now: () => new Date(),
    elapsedMs: () => performance.now(),
    uuid: randomUUID,
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    platform: { type: os.type(), release: os.release(), machine: os.machine() },
    vendor: VENDOR,
    toolVersion: typeof TOOL_VERSION === 'string' ? TOOL_VERSION : 'development',
    armDeadline: (ms) => void setTimeout(() => process.exit(0), Math.max(0, ms)).unref(),
  };
}
