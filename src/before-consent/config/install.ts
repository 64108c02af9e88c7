import path from 'node:path';
import { nodeFs } from '../node-builtins.ts';

/**
 * What the installer chose, kept beside the copy it installed (`anonymous-statistics.json` next
 * to `anonymous-statistics.js`), so a hook that runs that copy bare uses the installer's config
 * and state dirs, and with them an opt-out the installer recorded there. A file that is there
 * but cannot be read or understood is a problem, not an absence: telemetry then stays off
 * (doubt resolves toward privacy), and `status` says why.
 */
const INSTALL_SETTINGS_FILE = 'anonymous-statistics.json';

export interface InstallSettings {
  file?: string;
  configDir?: string;
  stateDir?: string;
  /** Why the file that is there cannot be used. */
  problem?: string;
}

export function readInstallSettings(scriptPath: string | undefined): InstallSettings {
  if (scriptPath === undefined) return {};
  const file = path.join(path.dirname(path.resolve(scriptPath)), INSTALL_SETTINGS_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readRegularFile(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return {};
    return { file, problem: `${file} cannot be used (${code ?? 'not JSON'})` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { file, problem: `${file} is not a JSON object` };
  const settings: InstallSettings = { file };
  for (const key of ['configDir', 'stateDir'] as const) {
    const value = (parsed as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !value.startsWith('/')) return { file, problem: `${file}: "${key}" must be an absolute path` };
    settings[key] = value;
  }
  return settings;
}

/** O_NONBLOCK and a regular file only: nothing put in its place can make a hook wait. */
function readRegularFile(file: string): string {
  const { closeSync, constants, fstatSync, openSync, readFileSync } = nodeFs();
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EINVAL' });
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
