/** What a vendor fixes once, at build time (`npm run build -- --vendor FILE`). */
export interface VendorConfig {
  product: string;
  endpoint: string;
  apiKey: string;
  configDir: string;
  stateDir: string;
  /** Crash-loop limit: events of one kind sent per hour at most (default 10). */
  eventsPerHour?: number;
}

export const DEFAULT_EVENTS_PER_HOUR = 10;
const FIELDS = ['product', 'endpoint', 'apiKey', 'configDir', 'stateDir'] as const;
const OPTIONAL_FIELDS = ['eventsPerHour'] as const;

/** Throws an Error whose message names the file and the bad field. */
export function validateVendorConfig(raw: unknown, source: string): VendorConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${source}: expected a JSON object with ${FIELDS.join(', ')}`);
  }
  const record = raw as Record<string, unknown>;
  const known: readonly string[] = [...FIELDS, ...OPTIONAL_FIELDS];
  const unknownKeys = Object.keys(record).filter((key) => !known.includes(key));
  if (unknownKeys.length > 0) throw new Error(`${source}: unknown field "${unknownKeys[0]}"`);
  for (const field of FIELDS) {
    const value = record[field];
    if (typeof value !== 'string' || value.trim() === '') throw new Error(`${source}: "${field}" must be a non-empty string`);
  }
  const perHour = record.eventsPerHour;
  if (perHour !== undefined && !(Number.isSafeInteger(perHour) && (perHour as number) >= 1 && (perHour as number) <= 3600)) {
    throw new Error(`${source}: "eventsPerHour" must be a whole number from 1 to 3600`);
  }
  const config = record as unknown as VendorConfig;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(config.product)) {
    throw new Error(`${source}: "product" may hold only letters, digits, ".", "_" and "-"`);
  }
  for (const dir of ['configDir', 'stateDir'] as const) {
    if (!config[dir].startsWith('/')) throw new Error(`${source}: "${dir}" must be an absolute path`);
  }
  let url: URL;
  try {
    url = new URL(config.endpoint);
  } catch {
    throw new Error(`${source}: "endpoint" is not a URL: ${config.endpoint}`);
  }
  if (url.protocol !== 'https:') throw new Error(`${source}: "endpoint" must use https:`);
  return config;
}
