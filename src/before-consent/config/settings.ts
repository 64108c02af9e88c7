import path from 'node:path';
import { UsageError } from '../errors.ts';
import type { InstallSettings } from './install.ts';
import { SINK_NAMES, sinkProblem, type OptOutMeaning, type SinkName, type VendorConfig } from './vendor.ts';
import { isLoopbackHost } from '../../shared/endpoint-url.ts';
import { parseEndpoint, type Source } from './endpoint.ts';

export { isLoopbackHost } from '../../shared/endpoint-url.ts';

export type Env = Readonly<Record<string, string | undefined>>;
export type OptionValues = Readonly<Record<string, string | boolean | string[] | undefined>>;

export interface Settings {
  product: string;
  endpoint: URL;
  /** PostHog's project key; empty where the sink needs none (otlp, ga4). */
  apiKey: string;
  /** Where events go: the build's "sink", then TELEMETRY_SINK, then --sink. */
  sink: SinkName;
  configDir: string;
  stateDir: string;
  productVersion: string | undefined;
  timeoutMs: number;
  logFile: string | undefined;
  root: string;
  dryRun: boolean;
  background: boolean;
  showNotice: boolean;
  /** The opt-out flag as given (--disable-telemetry or the vendor's own spelling), if any. */
  disableFlag: string | undefined;
  /** The vendor's own opt-out variables, besides DISABLE_TELEMETRY and DO_NOT_TRACK. */
  optOutEnv: Readonly<Record<string, OptOutMeaning>>;
  /** The installer's settings file beside this copy, when there is one, and why it cannot be used. */
  installFile: string | undefined;
  installProblem: string | undefined;
  /** Why no event may leave this machine: the API key is still the example build's placeholder. */
  exampleKeyProblem: string | undefined;
}

/**
 * The placeholder key of the example build (vendor.json). A build that still has it sends to
 * loopback only (the tests, `npm run endpoint`): its events would otherwise reach PostHog under
 * a key that is nobody's. The key decides, not the endpoint: us.i.posthog.com is PostHog's own,
 * which a vendor's real key uses too.
 */
export const EXAMPLE_API_KEY = 'phc_example_replace_at_build_time';

const DEFAULT_TIMEOUT_MS = 2000;
const MAX_TIMEOUT_MS = 10 * 60 * 1000;

/** One source of a setting, in precedence order: the flag, its variable, the installer's file, the build. */

function pick(values: OptionValues, env: Env, flag: string, variable: string | undefined, fallback: string | undefined, installed?: { value: string | undefined; file: string | undefined }): Source | undefined {
  const fromFlag = values[flag];
  if (typeof fromFlag === 'string') return { value: fromFlag, name: `--${flag}` };
  const fromEnv = variable === undefined ? undefined : env[variable];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, name: variable as string };
  if (installed?.value !== undefined) return { value: installed.value, name: installed.file as string };
  return fallback === undefined ? undefined : { value: fallback, name: 'the build-time default' };
}

function nonEmpty(source: Source): string {
  if (source.value.trim() === '') throw new UsageError(`${source.name} must not be empty`);
  return source.value;
}

/** A relative path is taken from the working directory, which may be gone (a removed build dir, say). */
function absolutePath(source: Source): string {
  const value = nonEmpty(source);
  try {
    return path.resolve(value);
  } catch {
    throw new UsageError(`${source.name} "${value}" is relative, and the working directory it is relative to is gone`);
  }
}

/** Merge order written out once: build-time default, then the installer's file, then environment, then flag. */
export function resolveSettings(values: OptionValues, env: Env, vendor: VendorConfig, install: InstallSettings = {}): Settings {
  const logFile = pick(values, env, 'log-file', 'TELEMETRY_LOG_FILE', undefined);
  const productVersion = pick(values, env, 'product-version', 'TELEMETRY_PRODUCT_VERSION', undefined);
  const endpoint = parseEndpoint(pick(values, env, 'endpoint', 'TELEMETRY_ENDPOINT', vendor.endpoint) as Source);
  const sink = parseSink(pick(values, env, 'sink', 'TELEMETRY_SINK', vendor.sink ?? 'posthog') as Source, vendor);
  const apiKey = pick(values, env, 'api-key', 'TELEMETRY_API_KEY', vendor.apiKey);
  if (sink === 'posthog' && apiKey === undefined) throw new UsageError('the posthog sink needs an API key: --api-key or TELEMETRY_API_KEY (this build has none)');
  return {
    product: vendor.product,
    endpoint,
    apiKey: apiKey === undefined ? '' : nonEmpty(apiKey),
    sink,
    configDir: absolutePath(pick(values, env, 'config-dir', 'TELEMETRY_CONFIG_DIR', vendor.configDir, { value: install.configDir, file: install.file }) as Source),
    stateDir: absolutePath(pick(values, env, 'state-dir', 'TELEMETRY_STATE_DIR', vendor.stateDir, { value: install.stateDir, file: install.file }) as Source),
    productVersion: productVersion?.value,
    timeoutMs: parseTimeout(pick(values, env, 'timeout', 'TELEMETRY_TIMEOUT_MS', String(DEFAULT_TIMEOUT_MS)) as Source),
    logFile: logFile && absolutePath(logFile),
    root: typeof values.root === 'string' ? absolutePath({ value: values.root, name: '--root' }) : '/',
    dryRun: values['dry-run'] === true,
    background: values.background === true,
    showNotice: values['show-notice'] === true,
    disableFlag: givenOptOutFlag(values, vendor),
    optOutEnv: vendor.optOutEnv ?? {},
    installFile: install.file,
    installProblem: install.problem,
    exampleKeyProblem: apiKey && exampleKeyProblem(endpoint, apiKey),
  };
}

function exampleKeyProblem(endpoint: URL, apiKey: Source): string | undefined {
  if (apiKey.value !== EXAMPLE_API_KEY || isLoopbackHost(endpoint.hostname)) return undefined;
  return `not sending to ${endpoint.host}: the API key (${apiKey.name}) is the example build's placeholder; build with your own vendor file or set TELEMETRY_API_KEY (a loopback endpoint takes it as is)`;
}

/** The opt-out flag as given: --disable-telemetry or the vendor's own spelling. */
export function givenOptOutFlag(values: OptionValues, vendor: VendorConfig): string | undefined {
  if (values['disable-telemetry'] === true) return '--disable-telemetry';
  return vendor.optOutFlag !== undefined && values[vendor.optOutFlag.slice(2)] === true ? vendor.optOutFlag : undefined;
}

/** One of the sinks, and one this build can use (GA4 needs its ids from the build file). */
function parseSink(source: Source, vendor: VendorConfig): SinkName {
  const name = source.value.trim();
  if (!SINK_NAMES.includes(name as SinkName)) throw new UsageError(`${source.name} must be one of ${SINK_NAMES.join(', ')}, got "${source.value}"`);
  const problem = name === 'ga4' ? sinkProblem(vendor, name) : undefined;
  if (problem) throw new UsageError(`${source.name} ${name} ${problem}`);
  return name as SinkName;
}

function parseTimeout(source: Source): number {
  if (!/^\d+$/.test(source.value.trim())) {
    throw new UsageError(`${source.name} must be a whole number of milliseconds, got "${source.value}"`);
  }
  const ms = Number(source.value.trim());
  if (ms < 1 || ms > MAX_TIMEOUT_MS) throw new UsageError(`${source.name} must be between 1 and ${MAX_TIMEOUT_MS} ms, got ${ms}`);
  return ms;
}

