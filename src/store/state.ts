import path from 'node:path';
import { readOwnFile, writeWhole } from './files.ts';
import type { StateDir } from './state-dir.ts';

/**
 * Everything the state dir remembers besides the events themselves, in ONE file
 * (`<state-dir>/state.json`) written whole and renamed into place. Each update re-reads the file
 * just before writing it, so concurrent runs lose each other's changes only within that instant:
 * the crash-loop limit may be off by the runs of that instant, never by a flood. Every value is
 * checked when read; one that is malformed, or that a far-off clock made absurd, is dropped or
 * clamped, so a planted or stale state can neither stall nor steer a run.
 */
export interface State {
  /** The random distinct id, where there is no machine id. */
  distinctId?: string;
  /** When the first-run notice was shown. */
  noticeShown?: string;
  /** Events the full outbox dropped since the last event created (rides on the next one). */
  dropped: number;
  /** Crash-loop limit: a fixed one-hour window per event kind, and the events held back. */
  windows: Record<string, { start: number; count: number }>;
  suppressed: number;
  /** Per endpoint: failures in a row and the earliest next attempt (epoch ms). */
  backoff: Record<string, { failures: number; next: number }>;
  /** The daemon's current run (start to stop or fatal). */
  run?: { id: string; started: number; ended?: 'stop' | 'fatal' };
  /** CLI command executions by id, for command-end / command-action. */
  executions: Record<string, Execution>;
}

export interface Execution {
  name: string;
  flags: string[];
  envOptions: string[];
  started: number;
}

const STATE_FILE = 'state.json';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Executions kept at most (newest first), and for at most a day: a CLI's command ends long before. */
export const MAX_EXECUTIONS = 200;
export const EXECUTION_TTL_MS = 24 * 60 * 60 * 1000;

function stateFile(stateDir: StateDir): string {
  return path.join(stateDir.dir, STATE_FILE);
}

export function emptyState(): State {
  return { dropped: 0, windows: {}, suppressed: 0, backoff: {}, executions: {} };
}

const count = (value: unknown) => (Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0);
const isTime = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const strings = (value: unknown) => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);

function entries<T>(value: unknown, keep: (item: Record<string, unknown>) => T | undefined): Record<string, T> {
  const result: Record<string, T> = {};
  if (!isRecord(value)) return result;
  for (const [key, item] of Object.entries(value)) {
    const kept = isRecord(item) ? keep(item) : undefined;
    if (kept !== undefined) result[key] = kept;
  }
  return result;
}

/** Only what a run of ours could have written survives; the rest reads as never written. */
function sanitize(raw: unknown): State {
  const state = emptyState();
  if (!isRecord(raw)) return state;
  if (typeof raw.distinctId === 'string' && UUID.test(raw.distinctId)) state.distinctId = raw.distinctId;
  if (typeof raw.noticeShown === 'string') state.noticeShown = raw.noticeShown;
  state.dropped = count(raw.dropped);
  state.suppressed = count(raw.suppressed);
  state.windows = entries(raw.windows, (w) => (isTime(w.start) ? { start: w.start as number, count: count(w.count) } : undefined));
  state.backoff = entries(raw.backoff, (b) => (isTime(b.next) ? { failures: count(b.failures), next: b.next as number } : undefined));
  const run = raw.run;
  if (isRecord(run) && typeof run.id === 'string' && UUID.test(run.id) && isTime(run.started)) {
    state.run = { id: run.id, started: run.started as number, ...(run.ended === 'stop' || run.ended === 'fatal' ? { ended: run.ended } : {}) };
  }
  state.executions = entries(raw.executions, (e) =>
    typeof e.name === 'string' && isTime(e.started) ? { name: e.name, flags: strings(e.flags), envOptions: strings(e.envOptions), started: e.started as number } : undefined,
  );
  return state;
}

export function readState(stateDir: StateDir): State {
  try {
    return sanitize(JSON.parse(readOwnFile(stateFile(stateDir), stateDir.uid)));
  } catch {
    return emptyState(); // absent, planted, torn or not JSON: as if never written
  }
}

/**
 * Applies `change` to the state as it is on disk now and writes the result whole. Returns the
 * new state, or undefined when it could not be written (full disk, read-only dir): the caller
 * then decides as it would with nothing stored at all.
 */
export function updateState(stateDir: StateDir, change: (state: State) => State): State | undefined {
  const next = change(readState(stateDir));
  try {
    writeWhole(stateFile(stateDir), JSON.stringify(next));
    return next;
  } catch {
    return undefined;
  }
}
