import type { OutboxEvent } from '../../store/outbox.ts';
import { DEFAULT_MAX_BYTES, jsonRequest, type Sink } from './sink.ts';

/**
 * OpenTelemetry's OTLP/HTTP with the JSON encoding (opentelemetry-proto, docs/specification.md
 * "JSON Protobuf Encoding"): an ExportLogsServiceRequest POSTed to `<endpoint>/v1/logs`, one
 * LogRecord per event. The proto3 JSON mapping with OTLP's rules: lowerCamelCase field names,
 * enums as integers, 64-bit integers as decimal strings, and (canonical form) no field left at
 * its default value outside a oneof. test/otlp.test.ts decodes every body with the generated
 * protobuf code of opentelemetry-proto and compares it field by field.
 *
 * Nothing here reads the environment: werf's exporter takes OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_RESOURCE_ATTRIBUTES from the user's shell, so a user's credentials for their own backend
 * could reach the vendor. Headers come from the build file only.
 */

/** Collectors take large requests; a few hundred small records keep a request near 1 MB. */
const MAX_EVENTS = 200;
const SCOPE_NAME = 'anonymous-statistics';
/** opentelemetry.proto.logs.v1.SeverityNumber */
const SEVERITY = { INFO: 9, FATAL: 21 } as const;
/** Properties that only PostHog reads: `$ip` pins its geo lookup, `$process_person_profile` its person profiles. */
const POSTHOG_ONLY = new Set(['$ip', '$process_person_profile']);

type AnyValue = { stringValue: string } | { boolValue: boolean } | { intValue: string } | { doubleValue: number } | { arrayValue: { values?: AnyValue[] } };
interface KeyValue {
  key: string;
  value: AnyValue;
}

export function anyValue(value: unknown): AnyValue {
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') return Number.isSafeInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  if (Array.isArray(value)) return { arrayValue: value.length === 0 ? {} : { values: value.map(anyValue) } };
  return { stringValue: typeof value === 'string' ? value : JSON.stringify(value) ?? '' };
}

function attribute(key: string, value: unknown): KeyValue {
  return { key, value: anyValue(value) };
}

/** Nanoseconds since the epoch as a decimal string (a fixed64 in the proto: beyond a double's integers). */
function unixNano(iso: string): string {
  return (BigInt(Date.parse(iso)) * 1_000_000n).toString();
}

function logRecord(event: OutboxEvent): Record<string, unknown> {
  const time = unixNano(event.timestamp);
  const fatal = event.event === 'fatal';
  return {
    timeUnixNano: time,
    // Observed when it happened: the tool is the first to see the event.
    observedTimeUnixNano: time,
    severityNumber: fatal ? SEVERITY.FATAL : SEVERITY.INFO,
    severityText: fatal ? 'FATAL' : 'INFO',
    attributes: [
      ...Object.entries(event.properties)
        .filter(([key]) => !POSTHOG_ONLY.has(key))
        .map(([key, value]) => attribute(key, value)),
      attribute('event.id', event.uuid),
    ],
    eventName: event.event,
  };
}

/** A resource per product version: events queued across an upgrade keep the version they were made with. */
export function exportLogsRequest(events: readonly OutboxEvent[], toolVersion: string): Record<string, unknown> {
  const byResource = new Map<string, OutboxEvent[]>();
  for (const event of events) {
    const key = JSON.stringify([event.properties.product, event.properties.product_version]);
    byResource.set(key, [...(byResource.get(key) ?? []), event]);
  }
  return {
    resourceLogs: [...byResource.values()].map((group) => ({
      resource: {
        attributes: [attribute('service.name', String(group[0].properties.product ?? 'unknown')), attribute('service.version', String(group[0].properties.product_version ?? 'unknown'))],
      },
      scopeLogs: [{ scope: { name: SCOPE_NAME, version: toolVersion }, logRecords: group.map(logRecord) }],
    })),
  };
}

/** The signal path after the collector's base URL, as OTLP exporters add it to OTEL_EXPORTER_OTLP_ENDPOINT. */
export function logsUrl(endpoint: URL): URL {
  if (/\/v1\/logs$/.test(endpoint.pathname)) return endpoint;
  const url = new URL(endpoint.href);
  url.pathname = `${url.pathname.replace(/\/$/, '')}/v1/logs`;
  return url;
}

export function otlpSink(endpoint: URL, headers: Readonly<Record<string, string>>, toolVersion: string): Sink {
  const url = logsUrl(endpoint);
  return {
    name: 'otlp',
    maxEvents: MAX_EVENTS,
    maxBytes: DEFAULT_MAX_BYTES,
    shownUrl: url,
    singleFallback: false,
    problem: () => undefined,
    batchKey: () => '',
    request: (stored) => jsonRequest(url, exportLogsRequest(stored.map(({ event }) => event), toolVersion), headers),
  };
}
