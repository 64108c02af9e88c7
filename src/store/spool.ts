import { lstatSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, readNoFollow, readNumber, removeFile, writeAtomically, writeQuietly } from './state-dir.ts';

/**
 * The offline queue: one file per event in `<state-dir>/queue/`, so a crash or `kill -9` can
 * at worst leave a temporary file behind, never a half-written queue (see state-dir.ts for how
 * files are written and why symlinks are refused).
 */

/** Past either cap the oldest events are dropped first, and the drop is counted. */
export const QUEUE_MAX_EVENTS = 1000;
export const QUEUE_MAX_BYTES = 4 * 1024 * 1024;

const QUEUE_DIR = 'queue';
/** Written before a send is tried; flushers leave it alone while its writer may still be running. */
const PENDING_SUFFIX = '.pending';
const DROPPED_FILE = 'queue-dropped';
const EVENT_SUFFIX = '.json';
const CORRUPT_SUFFIX = '.corrupt';

export interface QueuedEvent {
  file: string;
  event: Record<string, unknown>;
  bytes: number;
}

export interface Spool {
  dir: string;
  stateDir: string;
}

/** The queue of a state dir, for reading only (nothing is created). */
export function spoolAt(stateDir: string): Spool {
  return { dir: path.join(stateDir, QUEUE_DIR), stateDir };
}

/** Creates (0700) and checks the queue directory; undefined when it is not safe or not writable. */
export function openSpool(stateDir: string, uid: number | undefined): Spool | undefined {
  const spool = spoolAt(stateDir);
  return ensurePrivateDir(spool.dir, uid, stateDir) ? spool : undefined;
}

/** Named by creation time, then uuid: a directory listing sorts oldest first. */
function eventFile(spool: Spool, event: { uuid: string; timestamp: string }, suffix: string): string {
  return path.join(spool.dir, `${event.timestamp.replace(/[^0-9]/g, '')}-${event.uuid}${suffix}`);
}

/** Throws on a read-only or full disk: the caller drops the event. */
export function enqueue(spool: Spool, event: { uuid: string; timestamp: string }, body: string): void {
  writeAtomically(eventFile(spool, event, EVENT_SUFFIX), body);
}

/**
 * Write-ahead: the event is on disk before the network is tried, so a run killed mid-send
 * (deadline, SIGTERM from a service manager, `kill -9`) loses nothing. Returns the file, or
 * undefined when nothing can be written.
 */
export function writePending(spool: Spool, event: { uuid: string; timestamp: string }, body: string): string | undefined {
  const file = eventFile(spool, event, PENDING_SUFFIX);
  return writeQuietly(file, body) ? file : undefined;
}

/** A pending event becomes an ordinary queued one. */
export function promotePending(file: string): boolean {
  try {
    renameSync(file, file.slice(0, -PENDING_SUFFIX.length) + EVENT_SUFFIX);
    return true;
  } catch {
    return false;
  }
}

export function droppedCount(spool: Spool): number {
  return readNumber(path.join(spool.stateDir, DROPPED_FILE));
}

export function setDroppedCount(spool: Spool, count: number): void {
  const file = path.join(spool.stateDir, DROPPED_FILE);
  // The count is a courtesy; losing it loses no event.
  if (count === 0) removeFile(file);
  else writeQuietly(file, `${count}\n`);
}

export function queuedFiles(spool: Spool): string[] {
  try {
    return readdirSync(spool.dir).filter((name) => name.endsWith(EVENT_SUFFIX)).sort();
  } catch {
    return [];
  }
}

/**
 * Reads the queue oldest first. A file that is not a whole JSON event (truncated by a full disk,
 * edited by hand) is renamed aside with a `.corrupt` suffix and reported, never fatal.
 */
export function readQueue(spool: Spool, onCorrupt: (name: string) => void): QueuedEvent[] {
  const events: QueuedEvent[] = [];
  for (const name of queuedFiles(spool)) {
    // Plain concatenation: path.join per file is measurable with a thousand queued events.
    const file = `${spool.dir}/${name}`;
    try {
      const text = readNoFollow(file);
      const event = JSON.parse(text);
      if (typeof event !== 'object' || event === null || typeof event.uuid !== 'string' || typeof event.event !== 'string') throw new Error('not an event');
      events.push({ file, event, bytes: Buffer.byteLength(text) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // another flusher took it
      try {
        renameSync(file, `${file}${CORRUPT_SUFFIX}`);
      } catch {
        // leave it; it will be reported again
      }
      onCorrupt(name);
    }
  }
  return events;
}

/** Drops the oldest events beyond the caps and counts them for `queue_dropped`; returns how many. */
export function capQueue(spool: Spool): number {
  const names = queuedFiles(spool);
  const sizes = names.map((name) => {
    try {
      return lstatSync(path.join(spool.dir, name)).size;
    } catch {
      return 0;
    }
  });
  let bytes = sizes.reduce((sum, size) => sum + size, 0);
  let excess = Math.max(0, names.length - QUEUE_MAX_EVENTS);
  for (let i = 0; i < excess; i++) bytes -= sizes[i];
  while (excess < names.length && bytes > QUEUE_MAX_BYTES) bytes -= sizes[excess++];
  for (const name of names.slice(0, excess)) removeFile(path.join(spool.dir, name));
  if (excess > 0) setDroppedCount(spool, droppedCount(spool) + excess);
  return excess;
}

/** Older than any run can last (the longest budget): its writer died (`kill -9`, power loss). */
const ABANDONED_MS = 11 * 60 * 1000;

/** Removes abandoned temporary files and queues abandoned pending events. */
export function recoverAbandoned(spool: Spool, now: number): void {
  let names: string[];
  try {
    names = readdirSync(spool.dir).filter((name) => name.endsWith('.tmp') || name.endsWith(PENDING_SUFFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const file = `${spool.dir}/${name}`;
    try {
      if (now - lstatSync(file).mtimeMs <= ABANDONED_MS) continue;
      if (name.endsWith(PENDING_SUFFIX)) promotePending(file);
      else removeFile(file);
    } catch {
      // gone already
    }
  }
}

export function clearQueue(spool: Spool): number {
  const files = queuedFiles(spool);
  for (const name of files) removeFile(path.join(spool.dir, name));
  setDroppedCount(spool, 0);
  return files.length;
}
