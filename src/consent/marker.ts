import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { CommandError } from '../errors.ts';
import { markerPath } from './optout.ts';

const MARKER_TEXT = 'Anonymous statistics are disabled on this machine while this file exists.\n';

/** Idempotent: an existing marker is left as it is. */
export function disableTelemetry(configDir: string): string {
  const marker = markerPath(configDir);
  try {
    mkdirSync(configDir, { recursive: true });
    writeFileSync(marker, MARKER_TEXT, { flag: 'wx', mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new CommandError(`cannot create ${marker}: ${describe(error)}`);
  }
  return marker;
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
