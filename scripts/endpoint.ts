/**
 * A local receiver for all three sinks, for demos, tests and trying a flavour by hand: PostHog's
 * /capture/ and /batch/, OTLP/HTTP JSON logs at /v1/logs, GA4's Measurement Protocol at
 * /mp/collect. It listens on 127.0.0.1 only and checks bodies the way each receiver does (PostHog
 * fails a whole request for one malformed event with 400; a collector answers 415 to another
 * content type). It is not a production receiver: docs/sinks.md says what is, for each sink.
 *
 *   npm run endpoint [-- --port 8765]     then: anonymous-statistics start --endpoint http://127.0.0.1:8765 [--sink otlp|ga4]
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** The body as received (gzip already undone). */
  body: string;
  /**
   * The events it carried, when it was valid, each as a capture event (`event`, `uuid`,
   * `timestamp`, `properties`) whatever the encoding, so one test reads all three sinks alike.
   */
  events: Record<string, unknown>[];
  status: number;
}

/** How to answer; tests script faults with it. */
export type Behavior =
  /** `headers` go on the answer too (a Set-Cookie, to prove a client does not keep it). */
  | { kind: 'accept'; headers?: Record<string, string> }
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  /** Read the request, never answer. */
  | { kind: 'hang' }
  /** Answer 200 headers and part of the body, then never finish. */
  | { kind: 'hang-mid-body' }
  /** Accept, but send the answer one byte every `intervalMs`. */
  | { kind: 'drip'; intervalMs: number }
  | { kind: 'reset' }
  /** Accept, but refuse with 413 a body (gzip undone) larger than `bytes`, as PostHog does past its limit. */
  | { kind: 'max-body'; bytes: number };

export interface EndpointOptions {
  /** Serve https with this key and certificate. */
  tls?: { key: string; cert: string };
  port?: number;
}

export interface Endpoint {
  url: string;
  requests: ReceivedRequest[];
  /** All events accepted so far, in arrival order. */
  events(): Record<string, unknown>[];
  /** One behavior for every request, or a list used in turn (the last one repeats). */
  setBehavior(behavior: Behavior | Behavior[]): void;
  /** Resolves once `count` requests have been received and handled. */
  received(count: number): Promise<void>;
  /** TCP connections accepted so far, whether a request came on them or not. */
  connections(): number;
  close(): Promise<void>;
}

const CAPTURE_PATHS = new Set(['/capture/', '/capture', '/batch/', '/batch', '/e/', '/i/v0/e/']);

export async function startEndpoint(initial: Behavior | Behavior[] = { kind: 'accept' }, options: EndpointOptions = {}): Promise<Endpoint> {
  let behaviors = Array.isArray(initial) ? [...initial] : [initial];
  const requests: ReceivedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<{ count: number; resolve: () => void }>();
  const wake = () => {
    for (const waiter of waiters) {
      if (requests.length < waiter.count) continue;
      waiters.delete(waiter);
      waiter.resolve();
    }
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      answer(req, res, Buffer.concat(chunks));
      wake();
    });
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, handler) : createServer(handler);
  const answer = (req: IncomingMessage, res: ServerResponse, raw: Buffer) => {
    const behavior = behaviors.length > 1 ? (behaviors.shift() as Behavior) : behaviors[0];
    const record: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: '', events: [], status: 0 };
    requests.push(record);
    if (behavior.kind === 'hang') return;
    if (behavior.kind === 'reset') {
      req.socket.resetAndDestroy?.() ?? req.socket.destroy();
      return;
    }
    const verdict = check(req, raw);
    record.body = verdict.body;
    const success = verdict.kind === 'otlp' ? 200 : verdict.kind === 'ga4' ? 204 : 200;
    if (behavior.kind === 'hang-mid-body') {
      record.status = 200;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '64' }).write('{"status":');
      return;
    }
    if (behavior.kind === 'drip') {
      record.status = verdict.error ? 400 : 200;
      if (!verdict.error) record.events = verdict.events;
      const text = Buffer.from(JSON.stringify({ status: 1 }));
      res.writeHead(record.status, { 'content-type': 'application/json', 'content-length': String(text.length) });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(text.subarray(sent, ++sent));
        if (sent >= text.length) {
          clearInterval(timer);
          timers.delete(timer);
          res.end();
        }
      }, behavior.intervalMs);
      timers.add(timer);
      return;
    }
    if (behavior.kind === 'status') {
      record.status = behavior.status;
      res.writeHead(behavior.status, { 'content-type': 'application/json', ...behavior.headers }).end('{"status":0}');
      return;
    }
    if (behavior.kind === 'max-body' && Buffer.byteLength(verdict.body) > behavior.bytes) {
      record.status = 413;
      res.writeHead(413, { 'content-type': 'application/json' }).end('{"type":"validation_error","detail":"request too large"}');
      return;
    }
    record.status = verdict.error ? (verdict.status ?? 400) : success;
    if (!verdict.error) record.events = verdict.events;
    res.writeHead(record.status, { 'content-type': 'application/json', ...(behavior.kind === 'accept' ? behavior.headers : {}) });
    // An OTLP receiver answers an ExportLogsServiceResponse; GA4 answers 204 with no body.
    if (record.status === 204) res.end();
    else res.end(JSON.stringify(verdict.error ? { type: 'validation_error', detail: verdict.error } : verdict.kind === 'otlp' ? {} : { status: 1 }));
  };
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${bound}`,
    requests,
    events: () => requests.flatMap((r) => r.events),
    connections: () => connections,
    setBehavior: (next) => void (behaviors = Array.isArray(next) ? [...next] : [next]),
    received: (count) => new Promise<void>((resolve) => (requests.length >= count ? resolve() : void waiters.add({ count, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearInterval(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Verdict {
  kind?: 'posthog' | 'otlp' | 'ga4';
  body: string;
  events: Record<string, unknown>[];
  error?: string;
  /** The status of a refusal, where the receiver's is not 400. */
  status?: number;
}

/** PostHog's capture rules that matter to a client (CONTRACT.md "Payload"), or the OTLP or GA4 ones by path. */
function check(req: IncomingMessage, raw: Buffer): Verdict {
  let body: string;
  try {
    body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
  } catch {
    return { body: '', events: [], error: 'body is not valid gzip' };
  }
  const fail = (error: string): Verdict => ({ body, events: [], error });
  if (req.method !== 'POST') return fail(`method ${req.method} not allowed`);
  const url = new URL(req.url ?? '/', 'http://x');
  const pathname = url.pathname;
  if (pathname === OTLP_LOGS_PATH) return checkOtlp(req, body);
  if (pathname === GA4_COLLECT_PATH) return checkGa4(url, body);
  if (!CAPTURE_PATHS.has(pathname)) return fail(`unknown path ${req.url}`);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body);
  } catch {
    return fail('body is not JSON');
  }
  if (parsed.api_key !== undefined && parsed.token !== undefined) return fail('both api_key and token given');
  const envelopeKey = parsed.api_key ?? parsed.token;
  const events = Array.isArray(parsed.batch) ? (parsed.batch as Record<string, unknown>[]) : [parsed];
  if (events.length === 0) return fail('empty batch');
  for (const event of events) {
    const key = event.api_key ?? event.token ?? envelopeKey;
    if (typeof key !== 'string' || key === '') return fail('missing api_key');
    if (typeof event.event !== 'string' || event.event === '') return fail('missing event name');
    const properties = event.properties as Record<string, unknown> | undefined;
    const distinctId = event.distinct_id ?? properties?.distinct_id;
    if (typeof distinctId !== 'string' || distinctId === '') return fail('missing distinct_id');
    if (event.uuid !== undefined && !/^[0-9a-f-]{36}$/i.test(String(event.uuid))) return fail('invalid uuid');
    if (event.timestamp !== undefined && Number.isNaN(Date.parse(String(event.timestamp)))) return fail('invalid timestamp');
  }
  return { kind: 'posthog', body, events };
}

const OTLP_LOGS_PATH = '/v1/logs';
const GA4_COLLECT_PATH = '/mp/collect';

type Json = Record<string, any>;

/** An OTLP AnyValue as the plain value it carries. */
function plain(value: Json | undefined): unknown {
  if (value === undefined || value === null) return null;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return value.doubleValue;
  if ('arrayValue' in value) return ((value.arrayValue?.values ?? []) as Json[]).map(plain);
  return null;
}

/**
 * What an OpenTelemetry Collector's otlphttp receiver checks before it takes logs: the content
 * type (415 otherwise), a JSON ExportLogsServiceRequest. Each LogRecord is shown as a capture
 * event: eventName, event.id, its time, its attributes.
 */
function checkOtlp(req: IncomingMessage, body: string): Verdict {
  const fail = (error: string, status = 400): Verdict => ({ kind: 'otlp', body, events: [], error, status });
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return fail(`unsupported content type ${req.headers['content-type']}`, 415);
  let parsed: Json;
  try {
    parsed = JSON.parse(body);
  } catch {
    return fail('body is not JSON');
  }
  if (!Array.isArray(parsed.resourceLogs)) return fail('no resourceLogs');
  const events: Record<string, unknown>[] = [];
  for (const resourceLogs of parsed.resourceLogs as Json[]) {
    const resource = Object.fromEntries(((resourceLogs.resource?.attributes ?? []) as Json[]).map((kv) => [kv.key, plain(kv.value)]));
    for (const scopeLogs of (resourceLogs.scopeLogs ?? []) as Json[]) {
      for (const record of (scopeLogs.logRecords ?? []) as Json[]) {
        if (typeof record.timeUnixNano !== 'string' || !/^\d+$/.test(record.timeUnixNano)) return fail('timeUnixNano is not a decimal string');
        const attributes = Object.fromEntries(((record.attributes ?? []) as Json[]).map((kv) => [kv.key, plain(kv.value)]));
        const { 'event.id': uuid, ...properties } = attributes;
        events.push({ event: record.eventName, uuid, timestamp: new Date(Number(BigInt(record.timeUnixNano) / 1_000_000n)).toISOString(), resource, properties });
      }
    }
  }
  return { kind: 'otlp', body, events };
}

/**
 * GA4's Measurement Protocol as its /debug/mp/collect validates it (the real one answers 2xx to
 * anything): both ids in the URL, a client_id, 1 to 25 events with a name and params.
 */
function checkGa4(url: URL, body: string): Verdict {
  const fail = (error: string): Verdict => ({ kind: 'ga4', body, events: [], error });
  if (!url.searchParams.get('measurement_id') || !url.searchParams.get('api_secret')) return fail('measurement_id and api_secret are required');
  let parsed: Json;
  try {
    parsed = JSON.parse(body);
  } catch {
    return fail('body is not JSON');
  }
  if (typeof parsed.client_id !== 'string' || parsed.client_id === '') return fail('client_id is required');
  if (!Array.isArray(parsed.events) || parsed.events.length === 0 || parsed.events.length > 25) return fail('events must hold 1 to 25 events');
  const events = (parsed.events as Json[]).map(({ name, params = {}, timestamp_micros }) => {
    const { event_id: uuid, ...properties } = params as Json;
    return { event: name, uuid, timestamp: new Date(Number(timestamp_micros) / 1000).toISOString(), properties: { distinct_id: parsed.client_id, ...properties } };
  });
  return { kind: 'ga4', body, events };
}

/**
 * Properties every backend event carries, and the dashboard's constants: describing them on each
 * line would bury what tells one event from another. Everything else an event carries is its own.
 */
const SHARED_PROPERTY = /^(distinct_id|\$ip|\$process_person_profile|\$current_url|\$host|\$pathname|product|product_version|product_version_semver|schema_version|host_os_.*|container_os_.*|system_.*|host_is_k8s_node|ci|ci_name)$/;
/** Shared too, but worth a look when they are not 0: events were lost or held back. */
const LOSS_COUNTERS = new Set(['queue_dropped', 'suppressed_events']);

/** What an event carries of its own: every property but the shared ones (loss counters only when not 0). */
export function ownProperties(event: Record<string, unknown>): [string, unknown][] {
  const properties = (event.properties ?? {}) as Record<string, unknown>;
  return Object.entries(properties).filter(([key, value]) => !SHARED_PROPERTY.test(key) && !(LOSS_COUNTERS.has(key) && value === 0));
}

/** One line per event with its own fields, then the system it came from, for people reading a terminal. */
export function describeEvent(event: Record<string, unknown>): string {
  const properties = (event.properties ?? {}) as Record<string, unknown>;
  const own = ownProperties(event);
  const head = `${String(event.event).padEnd(18)} ${own.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') || '-'}`;
  // A dashboard's events carry no system facts: the browser module collects none.
  if (properties.system_kernel_name === undefined) return head;
  const inContainer = properties.container_os_name !== 'none';
  const os = inContainer
    ? `${properties.container_os_name} ${properties.container_os_version_id} in ${properties.system_container} on host ${properties.host_os_name}`
    : `${properties.host_os_name} ${properties.host_os_version_id}`;
  const system = `${os} / ${properties.system_kernel_name} ${properties.system_kernel_version} ${properties.system_architecture} / virt ${properties.system_virtualization}`;
  return `${head}\n${' '.repeat(19)}${system}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '8765' } } });
  startEndpoint({ kind: 'accept' }, { port: Number(values.port) }).then((endpoint) => {
    console.log(`receiver listening on ${endpoint.url}: PostHog (/capture/, /batch/), OTLP/HTTP JSON (/v1/logs), GA4 (/mp/collect); Ctrl-C to stop`);
    void printAsTheyArrive(endpoint);
  });
}

async function printAsTheyArrive(endpoint: Endpoint): Promise<void> {
  for (let handled = 1; ; handled++) {
    await endpoint.received(handled);
    const request = endpoint.requests[handled - 1];
    // The path without its query: GA4's carries the api secret.
    console.log(`-- ${request.status} ${request.method} ${request.path.split('?')[0]}: ${request.events.length} event(s)`);
    for (const event of request.events) console.log(describeEvent(event));
  }
}
