import { lstatSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { errorCode } from './files.ts';

/**
 * The one owner of the state dir: which dir a run may use, and why another is refused. A dir is
 * usable when it is a real directory (not a symlink), owned by the user we run as, and writable
 * by nobody else: then no other user can plant, replace or read anything in it, and nothing is
 * ever created inside a dir that fails the test (not even the outbox).
 */
export interface StateDir {
  dir: string;
  uid: number | undefined;
}

export interface Unusable {
  dir: string;
  reason: string;
}

type StateDirChoice = { stateDir: StateDir; refused: Unusable[] } | { stateDir: undefined; refused: Unusable[] };

/** Checks `dir`, creating it (0700) when absent and `create`; the reason it cannot be used otherwise. */
function checkStateDir(dir: string, uid: number | undefined, create: boolean): string | undefined {
  let stat;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') return `cannot be examined (${errorCode(error)})`;
    // Looking only (status, dry run): a run would create it, so it counts as the one in use.
    if (!create) return undefined;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      stat = lstatSync(dir);
    } catch (creating) {
      return `cannot be created (${errorCode(creating)})`;
    }
  }
  if (stat.isSymbolicLink()) return 'is a symlink (refused: it could point anywhere)';
  if (!stat.isDirectory()) return 'is not a directory';
  if (uid !== undefined && stat.uid !== uid) return `is owned by uid ${stat.uid}, not by the user running this (uid ${uid})`;
  if ((stat.mode & 0o022) !== 0) return `is writable by others (mode ${(stat.mode & 0o777).toString(8)})`;
  return undefined;
}

export interface StateDirCandidates {
  configured: string;
  product: string;
  env: Readonly<Record<string, string | undefined>>;
  tmpdir: string;
  uid: number | undefined;
}

/**
 * The configured dir, else a dir of this user's own, so a service user whose state dir the
 * installer left to root still keeps its crash-loop limit and back-off. In order: the configured
 * dir, $XDG_STATE_HOME/<product>, $HOME/.local/state/<product>, <tmpdir>/<product>-<uid>.
 */
export function stateDirCandidates({ configured, product, env, tmpdir, uid }: StateDirCandidates): string[] {
  const candidates = [configured];
  if (env.XDG_STATE_HOME?.startsWith('/')) candidates.push(path.join(env.XDG_STATE_HOME, product));
  if (env.HOME?.startsWith('/') && env.HOME !== '/') candidates.push(path.join(env.HOME, '.local/state', product));
  candidates.push(path.join(tmpdir, `${product}-${uid ?? 'user'}`));
  return [...new Set(candidates)];
}

/** The first usable candidate; `create` false looks without creating anything (status, dry run). */
export function chooseStateDir(candidates: readonly string[], uid: number | undefined, create: boolean): StateDirChoice {
  const refused: Unusable[] = [];
  for (const dir of candidates) {
    const reason = checkStateDir(dir, uid, create);
    if (reason === undefined) return { stateDir: { dir, uid }, refused };
    refused.push({ dir, reason });
  }
  return { stateDir: undefined, refused };
}
