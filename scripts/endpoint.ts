/**
 * A local PostHog-compatible capture endpoint, for demos, tests and trying reporting by hand.
 * It listens on 127.0.0.1 only and checks bodies the way PostHog's capture service does (a
 * malformed event fails the whole request with 400). It is not a production receiver: use
 * PostHog (cloud or self-hosted) for that.
 *
 *   npm run endpoint [-- --port 8765]     then: anonymous-statistics start --endpoint http://127.0.0.1:8765
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
  /** The events it carried, when it was valid. */
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
    record.status = verdict.error ? 400 : 200;
    if (!verdict.error) record.events = verdict.events;
    res.writeHead(record.status, { 'content-type': 'application/json', ...(behavior.kind === 'accept' ? behavior.headers : {}) });
    res.end(JSON.stringify(verdict.error ? { type: 'validation_error', detail: verdict.error } : { status: 1 }));
  };
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${bound}`,
    requests,
    events: () => requests.flatMap((r) => r.events),
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
  body: string;
  events: Record<string, unknown>[];
  error?: string;
}

/** PostHog's capture rules that matter to a client: see README "Payload". */
function check(req: IncomingMessage, raw: Buffer): Verdict {
  let body: string;
  try {
    body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
  } catch {
    return { body: '', events: [], error: 'body is not valid gzip' };
  }
  const fail = (error: string): Verdict => ({ body, events: [], error });
  if (req.method !== 'POST') return fail(`method ${req.method} not allowed`);
  if (!CAPTURE_PATHS.has(new URL(req.url ?? '/', 'http://x').pathname)) return fail(`unknown path ${req.url}`);
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
  return { body, events };
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
    console.log(`capture endpoint listening on ${endpoint.url} (POST /capture/ or /batch/); Ctrl-C to stop`);
    void printAsTheyArrive(endpoint);
  });
}

async function printAsTheyArrive(endpoint: Endpoint): Promise<void> {
  for (let handled = 1; ; handled++) {
    await endpoint.received(handled);
    for (const event of endpoint.requests[handled - 1].events) console.log(describeEvent(event));
  }
}
