import { lstatSync } from 'node:fs';
import path from 'node:path';
import { appendNoFollow, readNoFollow, writeAtomically } from './state-dir.ts';

/**
 * What happened to the last events, readable without setting anything up:
 * `<state-dir>/history.jsonl`, one entry per line, shown by `anonymous-statistics history`.
 * Capped: past LEDGER_MAX_BYTES only the newest LEDGER_KEEP entries are kept. Two runs trimming
 * at the same moment may lose a line of it, never an event.
 */
export interface LedgerEntry {
  time: string;
  event: string;
  uuid: string;
  outcome: 'sent' | 'queued' | 'dropped' | 'suppressed';
  reason: string;
  status?: number;
  duration_ms?: number;
}

const LEDGER_FILE = 'history.jsonl';
const LEDGER_MAX_BYTES = 128 * 1024;
export const LEDGER_KEEP = 200;

function ledgerFile(stateDir: string): string {
  return path.join(stateDir, LEDGER_FILE);
}

/** Call only with a state dir that ensurePrivateDir accepted. Never throws. */
export function record(stateDir: string, entries: readonly LedgerEntry[]): void {
  if (entries.length === 0) return;
  const file = ledgerFile(stateDir);
  try {
    // A flush of a thousand events would only be trimmed back to the newest ones: write just those.
    appendNoFollow(file, entries.slice(-LEDGER_KEEP).map((entry) => `${JSON.stringify(entry)}\n`).join(''));
    if (lstatSync(file).size > LEDGER_MAX_BYTES) writeAtomically(file, readLedgerLines(file).slice(-LEDGER_KEEP).join('\n') + '\n');
  } catch {
    // The ledger is a courtesy; a full disk must not cost the event.
  }
}

function readLedgerLines(file: string): string[] {
  try {
    return readNoFollow(file).split('\n').filter((line) => line.trim() !== '');
  } catch {
    return [];
  }
}

/** The newest entries last; lines that are not entries (a torn write) are skipped. */
export function readLedger(stateDir: string): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const line of readLedgerLines(ledgerFile(stateDir)).slice(-LEDGER_KEEP)) {
    try {
      const entry = JSON.parse(line);
      if (typeof entry?.event === 'string' && typeof entry?.outcome === 'string') entries.push(entry);
    } catch {
      // skipped
    }
  }
  return entries;
}

export function formatLedger(entries: readonly LedgerEntry[]): string {
  if (entries.length === 0) return 'no events recorded yet\n';
  const rows = entries.map((e) => [e.time, e.event, e.outcome, e.status === undefined ? '' : String(e.status), e.duration_ms === undefined ? '' : `${e.duration_ms} ms`, e.reason]);
  const header = ['time', 'event', 'outcome', 'http', 'took', 'why'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}
