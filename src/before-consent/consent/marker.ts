import path from 'node:path';
import { nodeFs } from '../node-builtins.ts';
import { CommandError } from '../errors.ts';
import { localOnlyPath, LOCAL_ONLY_TEXT } from './local.ts';
import { markerPath } from './optout.ts';

const MARKER_TEXT = 'Anonymous statistics are disabled on this machine while this file exists.\n';

/** Idempotent: an existing marker is left as it is. Off is off: local-only mode ends too. */
export function disableTelemetry(configDir: string): string {
  const marker = createMarker(markerPath(configDir), MARKER_TEXT);
  removeMarker(localOnlyPath(configDir));
  return marker;
}

/**
 * Local-only mode: the local marker made, the opt-out marker removed (as `enable` removes it:
 * the person chose to record again). Idempotent.
 */
export function chooseLocalOnly(configDir: string): { marker: string; removedOptOut: boolean } {
  const marker = createMarker(localOnlyPath(configDir), LOCAL_ONLY_TEXT);
  return { marker, removedOptOut: removeMarker(markerPath(configDir)) };
}

function createMarker(marker: string, text: string): string {
  try {
    makeDirs(path.dirname(marker));
    nodeFs().writeFileSync(marker, text, { flag: 'wx', mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new CommandError(`cannot create ${marker}: ${describe(error)}`);
  }
  return marker;
}

/** Says whether there was one to remove. */
function removeMarker(marker: string): boolean {
  try {
    nodeFs().unlinkSync(marker);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new CommandError(`cannot remove ${marker}: ${describe(error)}`);
  }
}

/**
 * Makes `dir` and its missing parents (0755), one component at a time: never Node's recursive
 * mkdir, which loops for ever on a path under /proc.
 */
function makeDirs(dir: string): void {
  const parts = path.resolve(dir).split('/').filter((part) => part !== '');
  for (let i = 1; i <= parts.length; i++) {
    try {
      nodeFs().mkdirSync(`/${parts.slice(0, i).join('/')}`, 0o755);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/**
 * Idempotent: a missing marker is not an error. Says whether there was one to remove, and
 * whether local-only mode ended (on means uploading again).
 */
export function enableTelemetry(configDir: string): { marker: string; removed: boolean; leftLocalOnly: boolean } {
  const marker = markerPath(configDir);
  const removed = removeMarker(marker);
  return { marker, removed, leftLocalOnly: removeMarker(localOnlyPath(configDir)) };
}

function describe(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  return code ?? message;
}
