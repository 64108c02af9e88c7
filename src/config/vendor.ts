import { UsageError } from '../errors.ts';
import { parseEndpoint } from './settings.ts';

/**
 * How an extra opt-out variable reads: `any` opts out on any non-empty value (like
 * DISABLE_TELEMETRY); `0` opts out on 0, false, off or no (werf's WERF_TELEMETRY=0).
 */
export type OptOutMeaning = 'any' | '0';

/** What a vendor fixes once, at build time (`npm run build -- --vendor FILE`). */
export interface VendorConfig {
  product: string;
  endpoint: string;
  apiKey: string;
  configDir: string;
  stateDir: string;
  /** Crash-loop limit: events of one kind sent per hour at most (default 10). */
  eventsPerHour?: number;
  /** The product's command, as the tool names itself to a person (default anonymous-statistics). */
  commandName?: string;
  /** The product's own opt-out variables, besides DISABLE_TELEMETRY and DO_NOT_TRACK. */
  optOutEnv?: Readonly<Record<string, OptOutMeaning>>;
  /** The product's own spelling of --disable-telemetry, e.g. --disable-analytics. */
  optOutFlag?: string;
  /**
   * Where no person can be told (no terminal, no installer), events wait in the outbox until the
   * notice has been shown on the host; by default they go as before.
   */
  noticeRequired?: boolean;
}

export const DEFAULT_EVENTS_PER_HOUR = 10;
export const DEFAULT_COMMAND_NAME = 'anonymous-statistics';
const FIELDS = ['product', 'endpoint', 'apiKey', 'configDir', 'stateDir'] as const;
const OPTIONAL_FIELDS = ['eventsPerHour', 'commandName', 'optOutEnv', 'optOutFlag', 'noticeRequired'] as const;
/** Generic opt-outs: a vendor cannot give them another meaning. */
const BUILT_IN_OPT_OUT_VARIABLES = ['DISABLE_TELEMETRY', 'DO_NOT_TRACK'];
/** The tool's own variables (settings, debug, the --background child's mark) are not opt-outs. */
const TOOL_VARIABLE = /^(TELEMETRY_|ANONYMOUS_STATISTICS_)/;
/** Printed to people and read by installers with sed: no quotes, no shell syntax, no newlines. */
const COMMAND_NAME = /^[A-Za-z0-9._/-]+( [A-Za-z0-9._/-]+)*$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LONG_OPTION = /^--[a-z0-9]+(-[a-z0-9]+)*$/;
/** A line break inside a dir would end the banner's comment line early (U+2028/9 too, in JS). */
const LINE_BREAKING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function commandName(vendor: VendorConfig): string {
  return vendor.commandName ?? DEFAULT_COMMAND_NAME;
}

/**
 * Throws an Error whose message names the file and the bad field. `takenOptions` are the long
 * options the tool already has (without "--"): the vendor's opt-out flag must not be one of them.
 */
export function validateVendorConfig(raw: unknown, source: string, takenOptions: readonly string[]): VendorConfig {
  const fail = (message: string): never => {
    throw new Error(`${source}: ${message}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`expected a JSON object with ${FIELDS.join(', ')}`);
  const record = raw as Record<string, unknown>;
  const known: readonly string[] = [...FIELDS, ...OPTIONAL_FIELDS];
  const unknownKeys = Object.keys(record).filter((key) => !known.includes(key));
  if (unknownKeys.length > 0) fail(`unknown field "${unknownKeys[0]}"`);
  for (const field of FIELDS) {
    const value = record[field];
    if (typeof value !== 'string' || value.trim() === '') fail(`"${field}" must be a non-empty string`);
  }
  const perHour = record.eventsPerHour;
  if (perHour !== undefined && !(Number.isSafeInteger(perHour) && (perHour as number) >= 1 && (perHour as number) <= 3600)) {
    fail(`"eventsPerHour" must be a whole number from 1 to 3600`);
  }
  if (record.noticeRequired !== undefined && typeof record.noticeRequired !== 'boolean') fail(`"noticeRequired" must be true or false`);
  const config = record as unknown as VendorConfig;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(config.product)) fail(`"product" may hold only letters, digits, ".", "_" and "-"`);
  for (const dir of ['configDir', 'stateDir'] as const) {
    if (!config[dir].startsWith('/')) fail(`"${dir}" must be an absolute path`);
    if (LINE_BREAKING.test(config[dir])) fail(`"${dir}" must not hold control characters or line breaks`);
  }
  try {
    // The rule the run applies to --endpoint: https:, or http: for loopback only.
    parseEndpoint({ value: config.endpoint, name: '"endpoint"' });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    fail(error.message);
  }
  if (record.commandName !== undefined && !(typeof record.commandName === 'string' && COMMAND_NAME.test(record.commandName))) {
    fail(`"commandName" must be a command such as "acme" or "acme telemetry": letters, digits, ".", "_", "-", "/", words separated by one space`);
  }
  if (record.optOutEnv !== undefined) validateOptOutEnv(record.optOutEnv, fail);
  if (record.optOutFlag !== undefined) {
    const flag = record.optOutFlag;
    if (typeof flag !== 'string' || !LONG_OPTION.test(flag)) fail(`"optOutFlag" must be a long option such as "--disable-analytics": "--", then lowercase letters, digits and inner "-"`);
    if (takenOptions.includes((flag as string).slice(2))) fail(`"optOutFlag" ${flag} is already an option of the tool`);
  }
  return config;
}

function validateOptOutEnv(value: unknown, fail: (message: string) => never): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`"optOutEnv" must be an object such as {"WERF_TELEMETRY": "0"}`);
  for (const [name, meaning] of Object.entries(value as Record<string, unknown>)) {
    if (!VARIABLE_NAME.test(name)) fail(`"optOutEnv" key "${name}" is not an environment variable name (letters, digits and "_", not starting with a digit)`);
    if (BUILT_IN_OPT_OUT_VARIABLES.includes(name)) fail(`"optOutEnv" key ${name} is already an opt-out (any non-empty value)`);
    if (TOOL_VARIABLE.test(name)) fail(`"optOutEnv" key ${name} is one of the tool's own variables`);
    if (meaning !== 'any' && meaning !== '0') fail(`"optOutEnv" ${name} must be "any" (any non-empty value opts out) or "0" (0, false, off or no opts out), got ${JSON.stringify(meaning)}`);
  }
}
