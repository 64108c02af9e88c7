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
const MAX_READ_BYTES = 1 << 20;

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

/**
 * Opens `file` for reading only if it is a regular file: a device node put where a system file
 * should be is never opened (a watchdog or a tape acts on open and close). On Linux the file is
 * first named with O_PATH, checked, then opened through that very descriptor, so nothing can be
 * swapped in between; elsewhere a stat comes first.
 */
function openRegularFile(file: string): number | undefined {
  if (O_PATH) {
    const named = openSync(file, O_PATH);
    try {
      if (!fstatSync(named).isFile()) return undefined;
      try {
        return openSync(`/proc/self/fd/${named}`, READ);
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
  if (fstatSync(fd).isFile()) return fd;
  closeSync(fd);
  return undefined;
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
  let fd: number | undefined;
  try {
    fd = openRegularFile(file);
    if (fd === undefined) return undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    // /proc files report a size of 0, so read until EOF rather than trusting stat.
    while (total < MAX_READ_BYTES) {
      const chunk = Buffer.allocUnsafe(Math.min(65536, MAX_READ_BYTES - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
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
