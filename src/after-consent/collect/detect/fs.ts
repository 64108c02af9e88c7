import { closeSync, constants, fstatSync, openSync, readdirSync, readlinkSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { O_PATH } from '../../fs-flags.ts';

/**
 * Total, root-confined file access for detection. Every path is relative to `root` and resolves
 * as if `root` were `/`: an absolute symlink lands back inside the root and `..` stops at it, so
 * nothing outside the root is ever read. Every function returns undefined/false/[] instead of
 * throwing: a missing or unreadable file is simply "no signal".
 */

const MAX_SYMLINKS = 40;
/** /proc/cpuinfo of a large machine is a few hundred KiB; nothing we read is legitimately larger. */
export const MAX_READ_BYTES = 1 << 20;

export function resolveInRoot(root: string, rel: string): string | undefined {
  // With the real root the kernel's own resolution is already confined to it.
  if (root === '/') return path.posix.join('/', rel);
  const pending = rel.split('/').filter((part) => part !== '');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const target = readLinkAt(path.join(root, ...resolved, part));
    if (target === null) return undefined;
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) return undefined;
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter((p) => p !== ''));
  }
  return path.join(root, ...resolved);
}

/** Link target; undefined when the path exists but is no link; null when it does not exist. */
function readLinkAt(file: string): string | undefined | null {
  try {
    return readlinkSync(file);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EINVAL' ? undefined : null;
  }
}

const READ = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

interface OpenedFile {
  fd: number;
  /** As fstat gives it: exact on a disk, 0 in /proc, 4096 in /sys whatever the file holds. */
  size: number;
}

/**
 * Opens `file` for reading only if it is a regular file: a device node put where a system file
 * should be is never opened (a watchdog or a tape acts on open and close). On Linux the file is
 * first named with O_PATH, checked, then opened through that very descriptor, so nothing can be
 * swapped in between; elsewhere a stat comes first. The reopen through /proc costs ~20 us a file
 * more than a plain open with O_NOFOLLOW (issue 17), but that open would reach the driver before
 * an fstat could refuse it, and O_NOFOLLOW guards the last name only, not a directory above it
 * swapped for a link after resolveInRoot looked at it.
 */
function openRegularFile(file: string): OpenedFile | undefined {
  if (O_PATH) {
    const named = openSync(file, O_PATH);
    try {
      const stat = fstatSync(named);
      if (!stat.isFile()) return undefined;
      try {
        return { fd: openSync(`/proc/self/fd/${named}`, READ), size: stat.size };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        // No /proc mounted: the stat below is what there is.
      }
    } finally {
      closeSync(named);
    }
  }
  if (!statSync(file).isFile()) return undefined;
  const fd = openSync(file, READ);
  const stat = fstatSync(fd);
  if (stat.isFile()) return { fd, size: stat.size };
  closeSync(fd);
  return undefined;
}

/**
 * One buffer for every file a run reads, grown (and kept) only for one larger than it, such as a
 * big machine's /proc/cpuinfo: a fresh 64 KiB buffer per read and a copy to join them cost about
 * 1 ms of a detection's 3 (issue 17).
 */
let readBuffer: Buffer = Buffer.alloc(0);

/** Up to MAX_READ_BYTES of an opened file, decoded as UTF-8. */
function readBounded({ fd, size }: OpenedFile): string {
  // A file on a disk ends at its size: no read is spent to find EOF. /proc and /sys files
  // report 0 or a page, so those are read until EOF.
  const limit = size > 0 ? Math.min(size, MAX_READ_BYTES) : MAX_READ_BYTES;
  let total = 0;
  while (total < limit) {
    if (total === readBuffer.length) readBuffer = grown(readBuffer, total);
    const n = readSync(fd, readBuffer, total, Math.min(readBuffer.length, limit) - total, null);
    if (n === 0) break;
    total += n;
  }
  return readBuffer.toString('utf8', 0, total);
}

function grown(buffer: Buffer, used: number): Buffer {
  const bigger = Buffer.allocUnsafe(Math.min(Math.max(buffer.length * 2, 1 << 16), MAX_READ_BYTES));
  buffer.copy(bigger, 0, 0, used);
  return bigger;
}

/**
 * A regular file's text, or undefined. Opened O_NONBLOCK and checked with fstat before a byte is
 * read, so a FIFO, a terminal or a blocking device put where a system file should be can never
 * hold a run past its budget (a synchronous read cannot be interrupted by a timer); a huge file
 * is read up to MAX_READ_BYTES only.
 */
export function readText(root: string, rel: string): string | undefined {
  const file = resolveInRoot(root, rel);
  if (file === undefined) return undefined;
  let opened: OpenedFile | undefined;
  try {
    opened = openRegularFile(file);
    return opened && readBounded(opened);
  } catch {
    return undefined;
  } finally {
    if (opened !== undefined) closeSync(opened.fd);
  }
}

export function exists(root: string, rel: string): boolean {
  const file = resolveInRoot(root, rel);
  if (file === undefined) return false;
  try {
    return statSync(file, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

export function listDir(root: string, rel: string): string[] {
  const dir = resolveInRoot(root, rel);
  if (dir === undefined) return [];
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The target of a symlink itself (not followed), as `readlink` prints it. */
export function readLink(root: string, rel: string): string | undefined {
  const parent = resolveInRoot(root, path.posix.dirname(rel));
  if (parent === undefined) return undefined;
  return readLinkAt(path.join(parent, path.posix.basename(rel))) ?? undefined;
}
