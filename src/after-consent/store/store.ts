import { lstatSync } from 'node:fs';
import path from 'node:path';
import { listNames, removeFile } from './files.ts';
import { ABANDONED_MS, openOutbox, type Outbox } from './outbox.ts';
import { chooseStateDir, closeStateDir, openFolder, type Candidate, type StateDir, type Unusable } from './state-dir.ts';

/**
 * A run's opened state dir: the dir itself, its outbox and its crash-loop slots, each checked and
 * reached through its opened directory (state-dir.ts). The layout:
 *
 *   .anonymous-statistics-state-dir   the tag that makes the dir the tool's own
 *   state.json                        runs, executions, back-off, counts, notice, random id
 *   history.jsonl                     the ledger (`history`)
 *   outbox/{tmp,new,cur,corrupt}/     the events (outbox.ts)
 *   limits/                           one file per event the crash-loop limit admitted this hour
 */
export interface Store {
  stateDir: StateDir;
  outbox: Outbox;
  limits: string;
}

/** A whole-file write a killed run left behind (files.ts writeWhole): `<file>.<pid>.<random>.tmp`. */
const LEFT_BY_A_KILLED_WRITE = /^(state\.json|history\.jsonl)\.\d{1,10}\.[0-9a-z]{1,16}\.tmp$/;
const MAX_SWEPT = 100;

function sweepLeftovers(stateDir: StateDir, now: number): void {
  for (const name of listNames(stateDir.dir, LEFT_BY_A_KILLED_WRITE, MAX_SWEPT)) {
    const file = path.join(stateDir.dir, name);
    try {
      if (Math.abs(now - lstatSync(file).mtimeMs) > ABANDONED_MS) removeFile(file);
    } catch {
      // gone already
    }
  }
}

/** The refused dirs and why, on one line (debug and flush's error). */
export function describeRefused(refused: readonly Unusable[]): string {
  return refused.map((r) => `${r.dir} ${r.reason}`).join('; ');
}

/** The first candidate that is usable whole (dir, outbox, limits), made if need be. */
export function openStore(candidates: readonly Candidate[], uid: number | undefined, now: number): { store?: Store; refused: Unusable[] } {
  const refused: Unusable[] = [];
  for (const candidate of candidates) {
    const chosen = chooseStateDir([candidate], uid, true);
    refused.push(...chosen.refused);
    const stateDir = chosen.stateDir;
    if (!stateDir) continue;
    const outbox = openOutbox(stateDir, true);
    const limits = typeof outbox === 'string' ? outbox : openFolder(stateDir, 'limits', true);
    if (typeof outbox !== 'string' && typeof limits !== 'string') {
      sweepLeftovers(stateDir, now);
      return { store: { stateDir, outbox, limits: limits.dir }, refused };
    }
    closeStateDir(stateDir);
    refused.push({ dir: candidate.dir, reason: `is unusable: ${typeof outbox === 'string' ? outbox : limits}` });
  }
  return { refused };
}

/** The state dir a run would use, looked at without creating anything (dry run, status, history). */
export function peekStore(candidates: readonly Candidate[], uid: number | undefined): { stateDir?: StateDir; outbox?: Outbox; refused: Unusable[] } {
  const { stateDir, refused } = chooseStateDir(candidates, uid, false);
  if (!stateDir) return { refused };
  const outbox = openOutbox(stateDir, false);
  return { stateDir, outbox: typeof outbox === 'string' ? undefined : outbox, refused };
}

export function closeStore(stateDir: StateDir | undefined): void {
  if (stateDir) closeStateDir(stateDir);
}
