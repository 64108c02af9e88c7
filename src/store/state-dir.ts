import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';

/**
 * Safe file handling in the state dir, which may sit in a shared place: directories are created
 * 0700 and must be real directories owned by us (a planted symlink is refused, not followed);
 * files are 0600, opened with O_NOFOLLOW, and written whole then renamed into place, so a crash
 * or `kill -9` never leaves half a file where a reader looks.
 */

/** Creates `dir` (and the state dir above it) 0700 and checks both; false when unsafe or unwritable. */
export function ensurePrivateDir(dir: string, uid: number | undefined, stateDir = dir): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const checked of new Set([stateDir, dir])) {
      const stat = lstatSync(checked);
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** Writes `content` to a fresh file and renames it into place: readers see all of it or none. */
export function writeAtomically(file: string, content: string): void {
  // A name of its own per writer: concurrent writers and a temp file left by `kill -9` never collide.
  const temporary = `${file}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, file);
  } catch (error) {
    removeFile(temporary);
    throw error;
  }
}

/**
 * For state that is a courtesy (a counter, a cached id, a marker): false when it could not be
 * written, and the caller carries on without it.
 */
export function writeQuietly(file: string, content: string): boolean {
  try {
    writeAtomically(file, content);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a regular file without following a symlink in its last component (O_NONBLOCK: a FIFO
 * put in its place cannot make us wait).
 */
export function readNoFollow(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    // A directory fails the read with EISDIR; a FIFO, opened non-blocking, reads as empty.
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export function readNumber(file: string): number {
  try {
    const value = Number(readNoFollow(file).trim());
    return Number.isSafeInteger(value) && value > 0 ? value : 0;
  } catch {
    return 0;
  }
}

export function readJson(file: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(readNoFollow(file));
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Appends in one write (O_APPEND: concurrent appenders do not interleave lines), 0600, no symlink. */
export function appendNoFollow(file: string, text: string): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

export function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone, or not ours to remove
  }
}
