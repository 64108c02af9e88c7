import path from 'node:path';
import { nodeFs } from '../node-builtins.ts';

/**
 * Local-only mode (Go's `gotelemetry local`): events are recorded in the history, never
 * uploaded. Kept as a marker file beside the opt-out marker, so it is known from one existsSync
 * before anything consent-sensitive is done, as the opt-out is; the opt-out wins over it.
 */
const LOCAL_ONLY_FILE = '.local-only-anonymous-statistics';
export const LOCAL_ONLY_TEXT = 'Anonymous statistics are recorded on this machine but never uploaded while this file exists.\n';

export function localOnlyPath(configDir: string): string {
  return path.join(configDir, LOCAL_ONLY_FILE);
}

export function isLocalOnly(configDir: string): boolean {
  return nodeFs().existsSync(localOnlyPath(configDir));
}
