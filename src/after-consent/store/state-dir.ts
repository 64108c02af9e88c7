import { chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, opendirSync, readlinkSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { O_PATH } from '../fs-flags.ts';
import { errorCode, writeNew } from './files.ts';

/**
 * The one owner of the state dir: which dir a run may use, and why another is refused.
 *
 * Trust is decided for the whole path, once, the way OpenSSH's StrictModes decides it: every
 * directory from `/` down to the state dir must be a directory owned by root or by the user we
 * run as and writable by nobody else (a root-owned sticky dir such as /tmp may be a parent: no one
 * else can rename or remove what we own in it); the state dir itself must be ours alone. The walk
 * opens each component relative to the one before (through `/proc/self/fd/N`, Linux's openat), so
 * nobody can swap a component once it is checked, and all later work goes through the opened
 * directory: a rename of a parent cannot redirect it. Where there is no `/proc/self/fd` (macOS,
 * FreeBSD) the same checks run on the path, which leaves the window between check and use that
 * docs/design.md describes.
 *
 * The state dir is the tool's own: a dir it created, or an empty one it was handed (systemd's
 * StateDirectory=), which it then tags. A dir that already holds anything else belongs to
 * somebody else (a daemon's own /var/lib/<product>) and is refused: nothing in it is touched.
 */
export interface StateDir {
  /** The dir as a person names it (status, messages). */
  shown: string;
  /** Where its files are reached: the opened dir on Linux, else the checked path. */
  dir: string;
  uid: number | undefined;
  /** Open directory descriptors of this run, closed by closeStateDir. */
  handles: number[];
}

export interface Unusable {
  dir: string;
  reason: string;
}

export type StateDirChoice = { stateDir: StateDir; refused: Unusable[] } | { stateDir: undefined; refused: Unusable[] };

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
/** With O_PATH, a dir we may enter but not list (mode 0300) can still be held and reached through. */
const OPEN_DIR = (O_PATH || O_RDONLY) | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK;
/** Symlinks followed in one path at most, as the kernel's own limit (ELOOP). */
const MAX_LINKS = 40;
/** Marks a dir as the tool's own; its presence is what lets a later run use a non-empty dir. */
export const TAG_FILE = '.anonymous-statistics-state-dir';
const TAG_TEXT = 'This directory belongs to anonymous-statistics (its outbox, limits and ledger).\nIt creates, renames and deletes files only inside this directory.\n';

/** A directory on the way that cannot be trusted: `where` (a real path) and what is wrong with it. */
class Refused extends Error {
  constructor(
    readonly where: string,
    readonly problem: string,
  ) {
    super(`${where} ${problem}`);
  }
}

interface Walked {
  fd: number;
  /** The real path walked so far (symlinks resolved): for messages and the path fallback. */
  real: string;
  /** Reached through /proc/self/fd/<fd> (Linux), else through `real`. */
  throughProc: boolean;
}

/** Whether `/proc/self/fd/N` reaches the directory behind descriptor N (Linux with /proc mounted). */
function reachableThroughProc(fd: number): boolean {
  try {
    const viaProc = statSync(`/proc/self/fd/${fd}`);
    const direct = fstatSync(fd);
    return viaProc.ino === direct.ino && viaProc.dev === direct.dev;
  } catch {
    return false;
  }
}

/** The path through which the files of an opened dir are reached. */
function handlePath(dir: Walked): string {
  return dir.throughProc ? `/proc/self/fd/${dir.fd}` : dir.real;
}

/** `name` inside an opened, checked directory, in a form that cannot be redirected where /proc allows. */
function inside(dir: Walked, name: string): string {
  return path.join(handlePath(dir), name);
}

function ownedByUs(stat: Stats, uid: number | undefined): boolean {
  return uid === undefined || stat.uid === uid;
}

/** Why a directory on the way to the state dir cannot be trusted, or undefined. */
function parentProblem(stat: Stats, uid: number | undefined): string | undefined {
  if (!stat.isDirectory()) return 'is not a directory';
  if (uid === undefined) return undefined;
  if (stat.uid !== 0 && stat.uid !== uid) return `is owned by uid ${stat.uid}, neither root nor the user running this (uid ${uid})`;
  const sharedButSafe = (stat.mode & 0o1000) !== 0 && stat.uid === 0;
  if ((stat.mode & 0o022) !== 0 && !sharedButSafe) return `is writable by others (mode ${(stat.mode & 0o7777).toString(8)})`;
  return undefined;
}

/** Why a directory of ours (the state dir, a folder in it) cannot be used, or undefined. */
export function ownDirProblem(stat: Stats, uid: number | undefined): string | undefined {
  if (!stat.isDirectory()) return 'is not a directory';
  if (!ownedByUs(stat, uid)) return `is owned by uid ${stat.uid}, not by the user running this (uid ${uid})`;
  if ((stat.mode & 0o022) !== 0) return `is writable by others (mode ${(stat.mode & 0o777).toString(8)})`;
  return undefined;
}

function openChecked(file: string, real: string, check: (stat: Stats) => string | undefined, throughProc?: boolean): Walked {
  const fd = openSync(file, OPEN_DIR);
  const problem = check(fstatSync(fd));
  if (problem === undefined) return { fd, real, throughProc: throughProc ?? reachableThroughProc(fd) };
  closeSync(fd);
  throw new Refused(real, problem);
}

/**
 * Creates `name` in `parent` with exactly `mode` (whatever the umask), or finds it made by a
 * racing run of ours. Never recursive: one component at a time, each checked before the next.
 */
function makeDir(parent: Walked, name: string, mode: number): void {
  try {
    mkdirSync(inside(parent, name), mode);
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw error;
    return;
  }
  // Made by us just now in a dir nobody else can write: the name still means that dir.
  chmodSync(inside(parent, name), mode);
}

/**
 * Opens `target` after checking every directory on its way, creating missing ones (parents 0755,
 * the last 0700) when `create`. Throws Refused with the reason; returns undefined when the dir
 * does not exist and may not be created.
 */
function walk(target: string, uid: number | undefined, create: boolean): Walked | undefined {
  let pending = path.resolve(target).split('/').filter((part) => part !== '');
  let current = openChecked('/', '/', (stat) => parentProblem(stat, uid));
  let links = 0;
  /** Components this walk made: one that still is not there after being made is not a directory we can use. */
  const made = new Set<string>();
  try {
    while (pending.length > 0) {
      const [name, ...rest] = pending;
      const real = path.join(current.real, name);
      const last = rest.length === 0;
      const check = (stat: Stats) => (last ? ownDirProblem(stat, uid) : parentProblem(stat, uid));
      let next: Walked;
      try {
        next = openChecked(inside(current, name), real, check, current.throughProc);
      } catch (error) {
        const code = errorCode(error);
        if (error instanceof Refused) throw error;
        if (code === 'ENOENT') {
          if (!create) return undefined;
          if (made.has(real)) throw new Refused(real, 'cannot be opened after it was made');
          made.add(real);
          try {
            makeDir(current, name, last ? 0o700 : 0o755);
          } catch (making) {
            throw new Refused(real, `cannot be created (${errorCode(making)})`);
          }
          continue;
        }
        if (code !== 'ELOOP' && code !== 'ENOTDIR') throw new Refused(real, `cannot be opened (${code})`);
        const link = lstatSync(inside(current, name));
        if (!link.isSymbolicLink()) throw new Refused(real, 'is not a directory');
        if (last) throw new Refused(real, 'is a symlink (refused: it could point anywhere)');
        // A link is as trustworthy as whoever could have made it: its parent is checked already.
        if (uid !== undefined && link.uid !== 0 && link.uid !== uid) throw new Refused(real, `is a symlink owned by uid ${link.uid}`);
        if (++links > MAX_LINKS) throw new Refused(target, 'has too many symlinks');
        const resolved = path.resolve(current.real, readlinkSync(inside(current, name)), ...rest);
        // Walk the resolved path again from /, checking every component of it.
        closeSync(current.fd);
        current = openChecked('/', '/', (stat) => parentProblem(stat, uid));
        pending = resolved.split('/').filter((part) => part !== '');
        continue;
      }
      closeSync(current.fd);
      current = next;
      pending = rest;
    }
    return current;
  } catch (error) {
    closeSync(current.fd);
    throw error;
  }
}

/** Whether the dir carries our tag: true, false when it has none; Refused when the tag is not ours. */
function isTagged(dir: Walked, uid: number | undefined): boolean {
  try {
    const stat = lstatSync(inside(dir, TAG_FILE));
    if (stat.isFile() && ownedByUs(stat, uid)) return true;
    throw new Refused(dir.real, `has a ${TAG_FILE} that is not a file of ours`);
  } catch (error) {
    if (error instanceof Refused) throw error;
    if (errorCode(error) === 'ENOENT') return false;
    throw new Refused(dir.real, `cannot be examined (${errorCode(error)})`);
  }
}

/**
 * The dir is the tool's own: tagged, or empty (and then tagged, when `tag`). Throws Refused
 * otherwise. A run of ours writes the tag before anything else, so an entry seen in an untagged
 * dir is another run's only when the tag has appeared since: it is looked for once more.
 */
function claimOwnership(dir: Walked, uid: number | undefined, tag: boolean): void {
  if (isTagged(dir, uid)) return;
  const listing = opendirSync(handlePath(dir));
  let first;
  try {
    first = listing.readSync();
  } finally {
    listing.closeSync();
  }
  if (first !== null) {
    if (isTagged(dir, uid)) return;
    throw new Refused(dir.real, `holds files that are not the tool's (${JSON.stringify(first.name)}): give it a directory of its own`);
  }
  if (!tag) return;
  try {
    writeNew(inside(dir, TAG_FILE), TAG_TEXT);
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw new Refused(dir.real, `cannot be written (${errorCode(error)})`);
  }
}

/** Why `dir` is refused, worded to follow "state dir <dir> ...". */
function describeRefusal(dir: string, refused: Refused): string {
  if (refused.where === dir) return refused.problem;
  return `is under ${refused.where}, which ${refused.problem}`;
}

/**
 * Checks `dir` and, when `create`, makes it and tags it (its missing parents too when
 * `makeParents`). Looking only (`create` false: status, dry run), a dir that does not exist yet
 * counts as the one a run would use, with nothing in it.
 */
function openStateDir(dir: string, uid: number | undefined, create: boolean, makeParents: boolean): StateDir | string {
  if (!path.isAbsolute(dir)) return 'is not an absolute path';
  if (create && !makeParents && !isDirectory(path.dirname(dir))) return `is unusable: ${path.dirname(dir)} does not exist`;
  let walked: Walked | undefined;
  try {
    walked = walk(dir, uid, create);
    if (walked === undefined) return { shown: dir, dir, uid, handles: [] };
    claimOwnership(walked, uid, create);
  } catch (error) {
    if (walked) closeSync(walked.fd);
    if (error instanceof Refused) return describeRefusal(path.resolve(dir), error);
    return `cannot be examined (${errorCode(error)})`;
  }
  return { shown: dir, dir: handlePath(walked), uid, handles: [walked.fd] };
}

/** A folder inside an opened dir of ours, checked like the dir itself; created (0700) when `create`. */
export function openFolder(parent: StateDir, name: string, create: boolean): StateDir | string {
  const file = path.join(parent.dir, name);
  const shown = path.join(parent.shown, name);
  try {
    if (create) {
      try {
        mkdirSync(file, 0o700);
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') return `${shown} cannot be created (${errorCode(error)})`;
      }
    }
    const opened = openChecked(file, shown, (stat) => ownDirProblem(stat, parent.uid), parent.dir.startsWith('/proc/self/fd/'));
    parent.handles.push(opened.fd);
    return { shown, dir: handlePath(opened), uid: parent.uid, handles: parent.handles };
  } catch (error) {
    if (error instanceof Refused) return error.message;
    return `${shown} cannot be opened (${errorCode(error)})`;
  }
}

export function closeStateDir(stateDir: StateDir): void {
  for (const fd of stateDir.handles.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
  }
}

export interface StateDirCandidates {
  configured: string;
  product: string;
  env: Readonly<Record<string, string | undefined>>;
  tmpdir: string;
  uid: number | undefined;
}

export interface Candidate {
  dir: string;
  /** Whether missing parents may be made (0755): not inside a temp dir that is not there. */
  makeParents: boolean;
}

/**
 * The configured dir, else a dir of this user's own, so a service user whose state dir the
 * installer left to root still keeps its crash-loop limit and back-off. In order: the configured
 * dir, $XDG_STATE_HOME/<product>, $HOME/.local/state/<product>, <tmpdir>/<product>-<uid>. Root
 * takes neither $HOME nor $XDG_STATE_HOME (under sudo they are often another user's); no run
 * takes a relative temp dir (it would land in the caller's working directory) or makes one.
 */
export function stateDirCandidates({ configured, product, env, tmpdir, uid }: StateDirCandidates): Candidate[] {
  const candidates: Candidate[] = [{ dir: configured, makeParents: true }];
  if (uid !== 0) {
    if (env.XDG_STATE_HOME?.startsWith('/')) candidates.push({ dir: path.join(env.XDG_STATE_HOME, product), makeParents: true });
    if (env.HOME?.startsWith('/') && env.HOME !== '/') candidates.push({ dir: path.join(env.HOME, '.local/state', product), makeParents: true });
  }
  if (path.isAbsolute(tmpdir)) candidates.push({ dir: path.join(tmpdir, `${product}-${uid ?? 'user'}`), makeParents: false });
  return candidates.filter((candidate, index) => candidates.findIndex((other) => other.dir === candidate.dir) === index);
}

/** The first usable candidate; `create` false looks without creating anything (status, dry run). */
export function chooseStateDir(candidates: readonly Candidate[], uid: number | undefined, create: boolean): StateDirChoice {
  const refused: Unusable[] = [];
  for (const { dir, makeParents } of candidates) {
    const opened = openStateDir(dir, uid, create, makeParents);
    if (typeof opened !== 'string') return { stateDir: opened, refused };
    refused.push({ dir, reason: opened });
  }
  return { stateDir: undefined, refused };
}

function isDirectory(dir: string): boolean {
  try {
    return lstatSync(dir).isDirectory();
  } catch {
    return false;
  }
}
