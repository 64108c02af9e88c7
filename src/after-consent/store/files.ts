import { closeSync, constants, fstatSync, lstatSync, opendirSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { O_PATH } from '../fs-flags.ts';

/**
 * File handling for the state dir. Every file is 0600 and opened with O_NOFOLLOW (a planted
 * symlink is refused, not followed) and O_NONBLOCK (a FIFO planted in a file's place can never
 * make a run wait); only regular files owned by us are read. A write counts only when every byte
 * landed: a short write (full disk, RLIMIT_FSIZE) throws, and the file is never renamed into place.
 */

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

/** What a state file may hold at most; a larger one is somebody else's doing. */
const MAX_STATE_FILE_BYTES = 4 * 1024 * 1024;

function writeAll(fd: number, content: string | Buffer): void {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  let written = 0;
  while (written < bytes.length) {
    const n = writeSync(fd, bytes, written, bytes.length - written);
    if (n <= 0) throw Object.assign(new Error('short write'), { code: 'ESHORT' });
    written += n;
  }
}

/** Creates `file` (which must not exist) holding all of `content`; on any failure it is removed again. */
export function writeNew(file: string, content: string | Buffer): void {
  const fd = openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o600);
  try {
    try {
      writeAll(fd, content);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    removeFile(file);
    throw error;
  }
}

/** Writes `content` to a fresh file beside `file` and renames it into place: readers see all of it or none. */
export function writeWhole(file: string, content: string | Buffer): void {
  const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeNew(temporary, content);
  try {
    renameSync(temporary, file);
  } catch (error) {
    removeFile(temporary);
    throw error;
  }
}

/**
 * Where files up to its size are read: a flush reads a thousand, and a buffer of its own for each
 * (Node's pool hands out a new 8 KB slab every few) left ~7 ms of allocations and their garbage.
 */
const scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * A regular file of ours, whole (up to `maxBytes`). Throws ENOENT when absent, and EPERM for
 * anything we would not trust: not a regular file, or owned by another user.
 */
export function readOwnFile(file: string, uid: number | undefined, maxBytes = MAX_STATE_FILE_BYTES): string {
  const fd = openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || (uid !== undefined && stat.uid !== uid)) throw Object.assign(new Error(`${file} is not a file of ours`), { code: 'EPERM' });
    const size = Math.min(stat.size, maxBytes);
    const buffer = size <= scratch.length ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
    let total = 0;
    while (total < buffer.length) {
      const n = readSync(fd, buffer, total, buffer.length - total, null);
      if (n === 0) break;
      total += n;
    }
    return buffer.toString('utf8', 0, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * Whose file an append goes to: `own` (the ledger) must be a regular file owned by `uid`; a log
 * the person chose may be any file or a FIFO with a reader, reached through a symlink of theirs
 * or root's, never through one another user planted (in a shared dir such as /tmp), whatever
 * the kernel's protected_symlinks says.
 */
export interface AppendTo {
  own: boolean;
  uid: number | undefined;
}

/** Appends in one write (O_APPEND: concurrent appenders do not interleave lines). */
export function appendText(file: string, text: string, { own, uid }: AppendTo): void {
  const flags = O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK;
  let fd: number;
  try {
    fd = openSync(file, flags | O_NOFOLLOW, 0o600);
  } catch (error) {
    if (own || errorCode(error) !== 'ELOOP') throw error;
    const link = lstatSync(file);
    if (uid !== undefined && link.uid !== uid && link.uid !== 0) throw Object.assign(new Error(`${file} is a symlink of uid ${link.uid}`), { code: 'EPERM' });
    fd = openSync(file, flags, 0o600);
  }
  try {
    const stat = fstatSync(fd);
    if (own && (!stat.isFile() || (uid !== undefined && stat.uid !== uid))) throw Object.assign(new Error(`${file} is not a file of ours`), { code: 'EPERM' });
    if (!stat.isFile() && !stat.isFIFO()) throw Object.assign(new Error(`${file} is neither a file nor a FIFO`), { code: 'EPERM' });
    writeAll(fd, text);
  } finally {
    closeSync(fd);
  }
}

export function removeFile(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch {
    return false; // already gone, or not ours to remove
  }
}

export function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException)?.code ?? (error as Error)?.message ?? String(error);
}

/**
 * The names in `dir` that match `pattern`, sorted, reading at most `max` entries: whatever a
 * folder holds (a flood of stale claims, files planted by hand), one run's work stays bounded.
 * A folder that cannot be read holds nothing we could use.
 */
export function listNames(dir: string, pattern: RegExp, max: number): string[] {
  const names: string[] = [];
  try {
    // Entries come from the kernel in batches of this many: Node's 32 cost a full outbox (1,000 entries) ~5 ms, this ~1 ms.
    const listing = opendirSync(dir, { bufferSize: 1024 });
    try {
      for (let seen = 0, entry; seen < max && (entry = listing.readSync()) !== null; seen++) if (pattern.test(entry.name)) names.push(entry.name);
    } finally {
      listing.closeSync();
    }
  } catch {
    // see above
  }
  return names.sort();
}

const THROUGH_PROC = '/proc/self/fd/';

/**
 * Runs `work` with the working dir borrowed: in `dir`, an opened folder (`/proc/self/fd/N`), so
 * the names `work` passes through `at` are found by the kernel from that folder, as openat
 * would: a flush's thousand claims, reads and deletes then skip resolving /proc/self/fd/N for
 * each, and still reach nothing but a name in the opened folder. `work` must be synchronous: no
 * other code of the run ever sees the borrowed dir. `files`: how many files `work` handles;
 * borrowing resolves /proc twice (there and back), so for one file or none it is not done.
 * Where nothing is borrowed, or the working dir could not be found again (no /proc: the folder
 * is a checked path; or a working dir we may not search), `at` gives the whole path.
 */
export function workingIn<T>(dir: string, files: number, work: (at: (name: string) => string) => T): T {
  const returnTo = files > 1 ? borrowWorkingDir(dir) : undefined;
  if (returnTo === undefined) return work((name) => `${dir}/${name}`);
  try {
    return work((name) => name);
  } finally {
    try {
      process.chdir(`${THROUGH_PROC}${returnTo}`);
    } finally {
      closeSync(returnTo);
    }
  }
}

/** Moves into `dir`; returns a descriptor of the working dir to come back to, or undefined where it stayed. */
function borrowWorkingDir(dir: string): number | undefined {
  if (O_PATH === 0 || !dir.startsWith(THROUGH_PROC)) return undefined;
  let returnTo: number | undefined;
  try {
    returnTo = openSync('.', O_PATH | O_DIRECTORY);
    process.chdir(dir);
    return returnTo;
  } catch {
    if (returnTo !== undefined) closeSync(returnTo);
    return undefined;
  }
}
