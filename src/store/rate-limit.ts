import path from 'node:path';
import { readJson, writeQuietly } from './state-dir.ts';

/**
 * The crash-loop limit: a daemon restarting every second calls `start` and `fatal` every
 * second. At most `perHour` events of one kind are sent per hour (a fixed window per kind);
 * the rest are counted, and the count rides on the next event sent (`suppressed_events`).
 * Concurrent runs may each miss the other's count (no lock): the limit is approximate by a few
 * events, never a flood.
 */
const RATE_FILE = 'event-rate.json';
const WINDOW_MS = 60 * 60 * 1000;

interface RateState {
  windows: Record<string, { start: number; count: number }>;
  suppressed: number;
}

function load(stateDir: string): RateState {
  const saved = readJson(path.join(stateDir, RATE_FILE));
  const windows = saved && typeof saved.windows === 'object' && saved.windows !== null ? (saved.windows as RateState['windows']) : {};
  const suppressed = saved && Number.isSafeInteger(saved.suppressed) ? (saved.suppressed as number) : 0;
  return { windows, suppressed };
}

function save(stateDir: string, state: RateState): void {
  // Without the file the limit starts over; no event is lost.
  writeQuietly(path.join(stateDir, RATE_FILE), JSON.stringify(state));
}

export interface RateDecision {
  admitted: boolean;
  /** Events suppressed since the last one sent: carried by this one if it is admitted. */
  suppressed: number;
}

/** Reads only: what a dry run shows. */
export function peekRate(stateDir: string): number {
  return load(stateDir).suppressed;
}

/** Decides and records: an admitted event resets the suppressed count it carries. */
export function admitEvent(stateDir: string, event: string, now: number, perHour: number): RateDecision {
  const state = load(stateDir);
  const window = state.windows[event];
  const current = window && now - window.start < WINDOW_MS && now >= window.start ? window : { start: now, count: 0 };
  if (current.count >= perHour) {
    save(stateDir, { ...state, suppressed: state.suppressed + 1 });
    return { admitted: false, suppressed: state.suppressed + 1 };
  }
  save(stateDir, { windows: { ...state.windows, [event]: { start: current.start, count: current.count + 1 } }, suppressed: 0 });
  return { admitted: true, suppressed: state.suppressed };
}
