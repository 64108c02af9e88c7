import { linkSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { Spool } from './spool.ts';
import { readNoFollow, removeFile, writeQuietly } from './state-dir.ts';

const LOCK_FILE = 'queue.lock';
/** A flusher never holds the lock longer than its budget; past this, a lock is abandoned. */
const STALE_LOCK_MS = 15 * 60 * 1000;

/**
 * One flusher at a time. The lock file appears whole or not at all: our "pid time" is written to
 * a file of our own, then hard-linked to the lock name, which fails if the lock exists (a plain
 * O_EXCL create would show a rival an empty lock for a moment, and it would take that as
 * abandoned). A lock whose owner is dead, or older than any run can last, is taken over by
 * renaming it away first, so of two rivals only one can take it.
 */
export function tryLock(spool: Spool, pid: number, now: number, isAlive: (pid: number) => boolean): (() => void) | undefined {
  const file = path.join(spool.stateDir, LOCK_FILE);
  const content = `${pid} ${now} ${Math.random().toString(36).slice(2)}\n`;
  const mine = `${file}.${pid}.${Math.random().toString(36).slice(2)}`;
  if (!writeQuietly(mine, content)) return undefined;
  const release = () => {
    // Only our own lock is removed: after a takeover the lock file may be another run's.
    if (readLockText(file) === content) removeFile(file);
  };
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(mine, file);
        return release;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
      }
      const held = readLockText(file);
      const [owner, since] = (held ?? '').trim().split(' ').map(Number);
      if (held !== undefined && Number.isSafeInteger(owner) && isAlive(owner) && now - since < STALE_LOCK_MS) return undefined;
      const aside = `${file}.abandoned.${Math.random().toString(36).slice(2)}`;
      try {
        renameSync(file, aside);
      } catch {
        continue; // a rival moved it first; try to link again
      }
      // If what we moved aside is not the abandoned lock we judged, it is a rival's fresh one: give it back.
      if (readLockText(aside) !== held) {
        try {
          linkSync(aside, file);
        } catch {
          // the lock name is taken again; the rival's lock stays where it is
        }
        removeFile(aside);
        return undefined;
      }
      removeFile(aside);
    }
    return undefined;
  } finally {
    removeFile(mine);
  }
}

function readLockText(file: string): string | undefined {
  try {
    return readNoFollow(file);
  } catch {
    return undefined;
  }
}
