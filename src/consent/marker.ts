import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CommandError } from '../errors.ts';
import { markerPath } from './optout.ts';

const MARKER_TEXT = 'Anonymous statistics are disabled on this machine while this file exists.\n';

/** Idempotent: an existing marker is left as it is. */
export function disableTelemetry(configDir: string): string {
  const marker = markerPath(configDir);
  try {
    makeDirs(configDir);
    writeFileSync(marker, MARKER_TEXT, { flag: 'wx', mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new CommandError(`cannot create ${marker}: ${describe(error)}`);
  }
  return marker;
}

/**
 * Makes `dir` and its missing parents (0755), one component at a time: never Node's recursive
 * mkdir, which loops for ever on a path under /proc.
 */
function makeDirs(dir: string): void {
  const parts = path.resolve(dir).split('/').filter((part) => part !== '');
  for (let i = 1; i <= parts.length; i++) {
    try {
      mkdirSync(`/${parts.slice(0, i).join('/')}`, 0o755);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** Idempotent: a missing marker is not an error. Says whether there was one to remove. */
export function enableTelemetry(configDir: string): { marker: string; removed: boolean } {
  const marker = markerPath(configDir);
  try {
    unlinkSync(marker);
    return { marker, removed: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { marker, removed: false };
    throw new CommandError(`cannot remove ${marker}: ${describe(error)}`);
  }
}

function describe(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  return code ?? message;
}
