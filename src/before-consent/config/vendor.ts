import { UsageError } from '../errors.ts';
import { parseEndpoint } from './endpoint.ts';

/**
 * How an extra opt-out variable reads: `any` opts out on any non-empty value (like
 * DISABLE_TELEMETRY); `0` opts out on 0, false, off or no (werf's WERF_TELEMETRY=0).
 */
export type OptOutMeaning = 'any' | '0';

/** Where events go (docs/sinks.md): PostHog's capture API, OTLP/HTTP JSON logs, or GA4's Measurement Protocol. */
export const SINK_NAMES = ['posthog', 'otlp', 'ga4'] as const;
export type SinkName = (typeof SINK_NAMES)[number];

/** What a vendor fixes once, at build time (`npm run build -- --vendor FILE`). */
export interface VendorConfig {
  product: string;
  endpoint: string;
  /** PostHog's project key; only the posthog sink needs one. */
  apiKey?: string;
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
  /** The sink a run uses unless --sink or TELEMETRY_SINK says otherwise (default posthog). */
  sink?: SinkName;
  /** Headers of every OTLP request (a collector's auth token, say); nothing else sets them. */
  otlpHeaders?: Readonly<Record<string, string>>;
  /** GA4's stream and its Measurement Protocol secret, both in the URL (public in a shipped file). */
  ga4MeasurementId?: string;
  ga4ApiSecret?: string;
  /**
   * Where no person can be told (no terminal, no installer), events wait in the outbox until the
   * notice has been shown on the host; by default they go as before.
   */
  noticeRequired?: boolean;
}

export const DEFAULT_EVENTS_PER_HOUR = 10;
export const DEFAULT_COMMAND_NAME = 'anonymous-statistics';
const FIELDS = ['product', 'endpoint', 'configDir', 'stateDir'] as const;
const OPTIONAL_FIELDS = ['apiKey', 'eventsPerHour', 'commandName', 'optOutEnv', 'optOutFlag', 'sink', 'otlpHeaders', 'ga4MeasurementId', 'ga4ApiSecret', 'noticeRequired'] as const;
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
  validateSink(record, fail);
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

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the transport sets itself from the body and the tool: a vendor's value would contradict them. */
const TRANSPORT_HEADERS = new Set(['content-type', 'content-length', 'content-encoding', 'transfer-encoding', 'host', 'user-agent', 'connection']);
/** GA4 measurement ids: G- and letters or digits (a web stream's id). */
const GA4_MEASUREMENT_ID = /^G-[A-Z0-9]{4,20}$/;
const GA4_API_SECRET = /^[A-Za-z0-9_-]{8,64}$/;

export function sinkProblem(vendor: Pick<VendorConfig, 'apiKey' | 'ga4MeasurementId' | 'ga4ApiSecret'>, sink: SinkName): string | undefined {
  if (sink === 'posthog' && !(typeof vendor.apiKey === 'string' && vendor.apiKey.trim() !== '')) return 'needs the build file\'s "apiKey" (PostHog\'s project key)';
  if (sink === 'ga4' && (vendor.ga4MeasurementId === undefined || vendor.ga4ApiSecret === undefined)) return 'needs the build file\'s "ga4MeasurementId" and "ga4ApiSecret"';
  return undefined;
}

function validateSink(record: Record<string, unknown>, fail: (message: string) => never): void {
  const { sink, otlpHeaders, ga4MeasurementId, ga4ApiSecret, apiKey } = record;
  if (sink !== undefined && !SINK_NAMES.includes(sink as SinkName)) fail(`"sink" must be one of ${SINK_NAMES.join(', ')}, got ${JSON.stringify(sink)}`);
  if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey.trim() === '')) fail(`"apiKey" must be a non-empty string`);
  if (otlpHeaders !== undefined) {
    if (typeof otlpHeaders !== 'object' || otlpHeaders === null || Array.isArray(otlpHeaders)) fail(`"otlpHeaders" must be an object of header names to string values, such as {"Authorization": "Bearer ..."}`);
    for (const [name, value] of Object.entries(otlpHeaders as Record<string, unknown>)) {
      if (!HEADER_NAME.test(name)) fail(`"otlpHeaders" key ${JSON.stringify(name)} is not an HTTP header name`);
      if (TRANSPORT_HEADERS.has(name.toLowerCase())) fail(`"otlpHeaders" key ${name} is set by the tool itself`);
      if (typeof value !== 'string' || LINE_BREAKING.test(value)) fail(`"otlpHeaders" ${name} must be a string without control characters or line breaks`);
    }
  }
  if (ga4MeasurementId !== undefined && !(typeof ga4MeasurementId === 'string' && GA4_MEASUREMENT_ID.test(ga4MeasurementId))) fail(`"ga4MeasurementId" must be a GA4 measurement id such as "G-ABC123XYZ9"`);
  if (ga4ApiSecret !== undefined && !(typeof ga4ApiSecret === 'string' && GA4_API_SECRET.test(ga4ApiSecret))) fail(`"ga4ApiSecret" must be a Measurement Protocol API secret (8 to 64 letters, digits, "_" or "-")`);
  const chosen = (sink as SinkName | undefined) ?? 'posthog';
  if (chosen === 'posthog' && apiKey === undefined) fail(`"apiKey" must be a non-empty string: the posthog sink sends PostHog's project key`);
  const problem = sinkProblem(record as unknown as VendorConfig, chosen);
  if (problem) fail(`"sink" ${chosen} ${problem}`);
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
