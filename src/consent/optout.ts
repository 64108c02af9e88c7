import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Env } from '../config/settings.ts';

const MARKER_FILE = '.opt-out-from-anonymous-statistics';
const OPT_OUT_VARIABLES = ['DISABLE_TELEMETRY', 'DO_NOT_TRACK'] as const;

export interface OptOut {
  mechanism: 'flag' | (typeof OPT_OUT_VARIABLES)[number] | 'marker' | 'install-settings';
  detail: string;
}

export function markerPath(configDir: string): string {
  return path.join(configDir, MARKER_FILE);
}

/**
 * Every opt-out in force, cheapest first. `first` stops at the first one, so an opted-out event
 * command touches the filesystem at most for one existsSync of the marker.
 */
export function optOuts(disableFlag: boolean, env: Env, configDir: string, first = false, installProblem?: string): OptOut[] {
  const found: OptOut[] = [];
  if (disableFlag) found.push({ mechanism: 'flag', detail: '--disable-telemetry was given' });
  // The installer's choices may include an opt-out we cannot see: doubt resolves toward privacy.
  if (installProblem !== undefined) found.push({ mechanism: 'install-settings', detail: `${installProblem}, so the installer's choices are unknown` });
  for (const name of OPT_OUT_VARIABLES) {
    if (first && found.length > 0) return found;
    const value = env[name];
    // Any non-empty value opts out, "0" and "false" included: doubt resolves toward privacy.
    if (value !== undefined && value !== '') {
      found.push({ mechanism: name, detail: `${name}=${JSON.stringify(value)} is set (any non-empty value opts out, even 0)` });
    }
  }
  if (first && found.length > 0) return found;
  const marker = markerPath(configDir);
  if (existsSync(marker)) found.push({ mechanism: 'marker', detail: `the marker file ${marker} exists` });
  return found;
}
