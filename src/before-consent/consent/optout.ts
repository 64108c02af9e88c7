import path from 'node:path';
import { nodeFs } from '../node-builtins.ts';
import type { Env, Settings } from '../config/settings.ts';
import { commandName, type OptOutMeaning, type VendorConfig } from '../config/vendor.ts';

const MARKER_FILE = '.opt-out-from-anonymous-statistics';
const GENERIC_VARIABLES = { DISABLE_TELEMETRY: 'any', DO_NOT_TRACK: 'any' } as const;
/** werf's WERF_TELEMETRY=0 form: these values, in any case and with blanks around, opt out. */
const OFF_WORDS = ['0', 'false', 'off', 'no'];

export interface OptOut {
  /** `flag`, `marker`, or the name of the variable that is set. */
  mechanism: string;
  detail: string;
}

export function markerPath(configDir: string): string {
  return path.join(configDir, MARKER_FILE);
}

function variableOptsOut(value: string | undefined, meaning: OptOutMeaning): boolean {
  if (value === undefined || value === '') return false;
  return meaning === 'any' || OFF_WORDS.includes(value.trim().toLowerCase());
}

function variableDetail(name: string, value: string, meaning: OptOutMeaning): string {
  const rule = meaning === 'any' ? 'any non-empty value opts out, even 0' : '0, false, off or no opts out';
  return `${name}=${JSON.stringify(value)} is set (${rule})`;
}

/**
 * Every opt-out in force, cheapest first: the flag, the generic variables, the vendor's own
 * variables, the marker. `first` stops at the first one, so an opted-out event command touches
 * the filesystem at most for one existsSync of the marker.
 */
export function optOuts(settings: Pick<Settings, 'disableFlag' | 'optOutEnv' | 'configDir'> & { installProblem?: string }, env: Env, first = false, withMarker = true): OptOut[] {
  const found: OptOut[] = [];
  if (settings.disableFlag) found.push({ mechanism: 'flag', detail: `${settings.disableFlag} was given` });
  // The installer's choices may include an opt-out we cannot see: doubt resolves toward privacy.
  if (settings.installProblem !== undefined) found.push({ mechanism: 'install-settings', detail: `${settings.installProblem}, so the installer's choices are unknown` });
  for (const [name, meaning] of Object.entries({ ...GENERIC_VARIABLES, ...settings.optOutEnv })) {
    if (first && found.length > 0) return found;
    const value = env[name];
    // "any": "0" and "false" opt out too: doubt resolves toward privacy.
    if (variableOptsOut(value, meaning)) found.push({ mechanism: name, detail: variableDetail(name, value as string, meaning) });
  }
  if ((first && found.length > 0) || !withMarker) return found;
  const marker = markerPath(settings.configDir);
  if (nodeFs().existsSync(marker)) found.push({ mechanism: 'marker', detail: `the marker file ${marker} exists` });
  return found;
}

/** How a person opts out, in the product's own names where the vendor gave them. */
export interface OptOutAdvice {
  /** e.g. `WERF_TELEMETRY=0`, else `DO_NOT_TRACK=1` */
  variable: string;
  flag: string;
  /** e.g. `acme disable` */
  command: string;
}

export function optOutAdvice(vendor: VendorConfig): OptOutAdvice {
  const [own] = Object.entries(vendor.optOutEnv ?? {});
  return {
    variable: own ? `${own[0]}=${own[1] === 'any' ? '1' : '0'}` : 'DO_NOT_TRACK=1',
    flag: vendor.optOutFlag ?? '--disable-telemetry',
    command: `${commandName(vendor)} disable`,
  };
}
