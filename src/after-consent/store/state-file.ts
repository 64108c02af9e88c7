import path from 'node:path';
import { readOwnFile, writeWhole } from './files.ts';
import { emptyState, parseState, type State } from './state.ts';
import type { StateDir } from './state-dir.ts';

/**
 * The one reader and writer of `<state-dir>/state.json`, written whole and renamed into place.
 * Each update re-reads the file just before writing it, so concurrent runs lose each other's
 * changes only within that instant (a count, a back-off step); the crash-loop limit does not
 * live here and is not affected.
 */
export const STATE_FILE = 'state.json';

function stateFile(stateDir: StateDir): string {
  return path.join(stateDir.dir, STATE_FILE);
}

export function readState(stateDir: StateDir): State {
  try {
    return parseState(readOwnFile(stateFile(stateDir), stateDir.uid));
  } catch {
    return emptyState(); // absent, planted or torn: as if never written
  }
}

/**
 * Applies `change` to the state as it is on disk now and writes the result whole. Returns the
 * new state, or undefined when it could not be written (full disk, read-only dir): the caller
 * then decides as it would with nothing stored at all.
 */
export function updateState(stateDir: StateDir, change: (state: State) => State): State | undefined {
  const before = readState(stateDir);
  const next = change(before);
  if (next === before) return next;
  try {
    writeWhole(stateFile(stateDir), JSON.stringify(next));
    return next;
  } catch {
    return undefined;
  }
}
