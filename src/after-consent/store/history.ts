import { lstatSync } from 'node:fs';
import path from 'node:path';
import { appendText, readOwnFile, writeWhole } from './files.ts';
import type { StateDir } from './state-dir.ts';

/**
 * What happened to the last events, readable without setting anything up:
 * `<state-dir>/history.jsonl`, one entry per line, shown by `anonymous-statistics history`.
 * Capped: past HISTORY_MAX_BYTES only the newest HISTORY_KEEP entries are kept. Two runs trimming
 * at the same moment may lose a line of it, never an event.
 */
export interface HistoryEntry {
  /** When the outcome happened (entries are in this order). */
  time: string;
  /** When the event was created, where that was earlier (an event sent from the outbox). */
  event_time?: string;
  event: string;
  uuid: string;
  /** `local`: recorded in local-only mode, never uploaded. */
  outcome: 'sent' | 'queued' | 'dropped' | 'suppressed' | 'local';
  reason: string;
  /** Local-only mode: what would have been sent. */
  payload?: unknown;
  status?: number;
  duration_ms?: number;
}

const HISTORY_FILE = 'history.jsonl';
const HISTORY_MAX_BYTES = 128 * 1024;
export const HISTORY_KEEP = 200;

function historyFile(stateDir: StateDir): string {
  return path.join(stateDir.dir, HISTORY_FILE);
}

/** Never throws: the history is a courtesy, and a full disk or a planted file must not cost the event. */
export function recordHistory(stateDir: StateDir, entries: readonly HistoryEntry[]): void {
  if (entries.length === 0) return;
  const file = historyFile(stateDir);
  try {
    // A flush of a thousand events would only be trimmed back to the newest ones: write just those.
    appendText(file, entries.slice(-HISTORY_KEEP).map((entry) => `${JSON.stringify(entry)}\n`).join(''), { own: true, uid: stateDir.uid });
    if (lstatSync(file).size > HISTORY_MAX_BYTES) writeWhole(file, readHistoryLines(stateDir).slice(-HISTORY_KEEP).join('\n') + '\n');
  } catch {
    // see above
  }
}

function readHistoryLines(stateDir: StateDir): string[] {
  try {
    return readOwnFile(historyFile(stateDir), stateDir.uid).split('\n').filter((line) => line.trim() !== '');
  } catch {
    return [];
  }
}

/** The newest entries last; lines that are not entries (a torn write) are skipped. */
export function readHistory(stateDir: StateDir): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const line of readHistoryLines(stateDir).slice(-HISTORY_KEEP)) {
    try {
      const entry = JSON.parse(line);
      if (typeof entry?.event === 'string' && typeof entry?.outcome === 'string') entries.push(entry);
    } catch {
      // skipped
    }
  }
  return entries;
}

export function formatHistory(entries: readonly HistoryEntry[]): string {
  if (entries.length === 0) return 'no events recorded yet\n';
  const rows = entries.map((e) => [e.time, e.event, e.outcome, e.status === undefined ? '' : String(e.status), e.duration_ms === undefined ? '' : `${e.duration_ms} ms`, e.reason]);
  const header = ['time', 'event', 'outcome', 'http', 'took', 'why'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}
