import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { resolveSettings } from '../../src/before-consent/config/settings.ts';
import { validateVendorConfig, type VendorConfig } from '../../src/before-consent/config/vendor.ts';
import { optionNames } from '../../src/before-consent/cli/parse.ts';
import { deliverNew } from '../../src/after-consent/deliver/delivery.ts';
import { main } from '../../src/before-consent/run.ts';
import { readHistory } from '../../src/after-consent/store/history.ts';
import { store } from '../../src/after-consent/store/outbox.ts';
import { newReport } from '../../src/after-consent/deliver/report.ts';
import type { ReceivedRequest } from '../../scripts/endpoint.ts';
import { endpoint, fakeContext, makeRoot, openTestStore, runBundle, tempDir, trapViolations, waitingEvents } from '../support/helpers.ts';
import { ga4Violations } from '../support/ga4-rules.ts';

/**
 * The otlp and ga4 sinks against a real server on 127.0.0.1: every event command, its body as
 * the receiver's own definitions read it (OTLP: opentelemetry-proto's generated protobuf code;
 * GA4: its documented rules), the same bytes in --dry-run, on the wire and in the log, and the
 * promises every sink keeps (the outbox, exactly once, no OTEL_* variable read).
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

/** opentelemetry-proto compiled by protobufjs, as @opentelemetry/otlp-transformer 0.214.0 ships it (LogRecord.eventName included). */
const { opentelemetry } = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const ExportLogsServiceRequest = opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;

/**
 * The body encoded to protobuf with the official definitions, decoded, and written back as OTLP
 * JSON (lowerCamelCase, enums as integers, 64-bit integers as strings, defaults left out): a
 * field the proto lacks, a wrong type or a wrong spelling comes back different or not at all.
 */
function throughTheProto(body: unknown): unknown {
  const bytes = ExportLogsServiceRequest.encode(ExportLogsServiceRequest.fromObject(body)).finish();
  return ExportLogsServiceRequest.toObject(ExportLogsServiceRequest.decode(bytes), { longs: String, enums: Number, defaults: false, arrays: false, json: true });
}

const GA4 = { ga4MeasurementId: 'G-TEST12345', ga4ApiSecret: 'test_secret_123' };
const OTLP_HEADERS = { Authorization: 'Bearer vendor-collector-token', 'X-Scope-OrgID': 'acme' };
const VENDOR: VendorConfig = { product: 'test-daemon', endpoint: 'https://telemetry.invalid', configDir: '/dev/null/config', stateDir: '/dev/null/state', otlpHeaders: OTLP_HEADERS, ...GA4, eventsPerHour: 3600 };
const NOW = new Date('2026-01-02T03:04:05.000Z');

/** Every variable the OpenTelemetry SDKs read for an exporter or a resource, each with a value that must never reach the wire. */
const OTEL_ENV = Object.fromEntries(
  [
    'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_LOGS_HEADERS', 'OTEL_RESOURCE_ATTRIBUTES', 'OTEL_SERVICE_NAME', 'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL', 'OTEL_EXPORTER_OTLP_COMPRESSION',
    'OTEL_EXPORTER_OTLP_LOGS_COMPRESSION', 'OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_LOGS_TIMEOUT', 'OTEL_EXPORTER_OTLP_CERTIFICATE',
    'OTEL_EXPORTER_OTLP_CLIENT_KEY', 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE', 'OTEL_EXPORTER_OTLP_INSECURE', 'OTEL_LOGS_EXPORTER', 'OTEL_SDK_DISABLED',
    'OTEL_PROPAGATORS', 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT', 'OTEL_BLRP_SCHEDULE_DELAY',
  ].map((name, i) => [name, `user-secret-${i}=user-secret-${i},authorization=Bearer user-secret-${i}`]),
);

function setup(t: TestContext) {
  const state = tempDir(t);
  const root = makeRoot(t, { 'etc/os-release': 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n', 'etc/machine-id': '00112233445566778899aabbccddeeff\n', 'proc/sys/kernel/ostype': 'Linux\n', 'proc/sys/kernel/osrelease': '6.1.0\n' });
  return { state, root, args: (url: string, sink: string) => ['--endpoint', url, '--sink', sink, '--state-dir', state, '--config-dir', state, '--root', root, '--product-version', '1.44.0'] };
}

/** Ids unique across the runs of a test, as the events of separate runs are. */
let made = 0;
const uuid = () => `00000000-0000-4000-8000-${(++made).toString(16).padStart(12, '0')}`;
const ctx = (overrides: Parameters<typeof fakeContext>[0] = {}) => fakeContext({ vendor: VENDOR, now: () => NOW, uuid, ...overrides });

/** Every event command this build has, with options that fill every property it can carry. */
async function everyCommand(run: (argv: string[]) => Promise<{ stdout: string }>): Promise<void> {
  await run(['start']);
  await run(['stop', '--exit-code', '3']);
  await run(['fatal', '--process', 'mydaemon', '--thread', 'main', '--function', 'rrd_init', '--file', 'db.c', '--line', '120', '--message', 'x'.repeat(300)]);
  await run(['cloud-connect-fail', '--code', 'ECONNREFUSED', '--code', 'ETIMEDOUT', '--message', 'connect failed']);
  await run(['cloud-deps-fail', '--dependency', 'libwebsockets']);
  await run(['cloud-unavailable', '--reason', 'disabled by policy']);
  await run(['install', '--result', 'failure', '--code', 'E42']);
  const id = (await run(['command-start', '--name', 'converge', '--option', 'dry-run', '--env-option', 'WERF_DEBUG'])).stdout.trim();
  await run(['command-action', '--execution-id', id, '--action', 'build']);
  await run(['command-end', '--execution-id', id, '--exit-code', '0']);
}

const COMMANDS = ['start', 'stop', 'fatal', 'cloud-connect-fail', 'cloud-deps-fail', 'cloud-unavailable', 'install', 'command-start', 'command-action', 'command-end'];

function inProcess(args: string[], env: Record<string, string> = {}) {
  return async (argv: string[]) => {
    const c = ctx({ env });
    assert.equal(await main([...argv, ...args], c), 0, c.err.join(''));
    return { stdout: c.out.join('') };
  };
}

test('otlp: every event command is one LogRecord POSTed as OTLP/HTTP JSON to /v1/logs, and reads back the same through opentelemetry-proto', async (t) => {
  const server = await endpoint(t);
  const { args } = setup(t);
  await everyCommand(inProcess(args(`${server.url}/`, 'otlp')));
  assert.equal(server.requests.length, COMMANDS.length);
  for (const [i, request] of server.requests.entries()) {
    assert.equal(request.path, '/v1/logs');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['content-encoding'], undefined);
    assert.equal(request.headers.authorization, OTLP_HEADERS.Authorization, 'the build file\'s headers');
    assert.equal(request.headers['x-scope-orgid'], 'acme');
    assert.equal(request.status, 200);
    const body = JSON.parse(request.body);
    assert.deepEqual(throughTheProto(body), body, 'every field as opentelemetry-proto defines it');
    const [resourceLogs] = body.resourceLogs;
    assert.deepEqual(resourceLogs.resource.attributes, [
      { key: 'service.name', value: { stringValue: 'test-daemon' } },
      { key: 'service.version', value: { stringValue: '1.44.0' } },
    ]);
    const [record] = resourceLogs.scopeLogs[0].logRecords;
    assert.equal(record.eventName, COMMANDS[i]);
    assert.equal(record.timeUnixNano, `${NOW.getTime()}000000`);
    const attributes = new Map(record.attributes.map((kv: { key: string; value: unknown }) => [kv.key, kv.value]));
    assert.match((attributes.get('event.id') as { stringValue: string }).stringValue, /^[0-9a-f-]{36}$/);
    assert.equal(attributes.has('$ip'), false, 'PostHog\'s own properties stay out');
    assert.deepEqual(attributes.get('schema_version'), { intValue: '2' });
    assert.deepEqual(attributes.get('host_os_id'), { stringValue: 'debian' });
  }
  const fatal = JSON.parse(server.requests[2].body).resourceLogs[0].scopeLogs[0].logRecords[0];
  const value = (key: string) => fatal.attributes.find((kv: { key: string }) => kv.key === key)?.value;
  assert.deepEqual(value('fatal_line'), { intValue: '120' });
  assert.equal(fatal.severityNumber, 21);
  const connect = JSON.parse(server.requests[3].body).resourceLogs[0].scopeLogs[0].logRecords[0];
  assert.deepEqual(connect.attributes.find((kv: { key: string }) => kv.key === 'cloud_error_codes').value, { arrayValue: { values: [{ stringValue: 'ECONNREFUSED' }, { stringValue: 'ETIMEDOUT' }] } });
  assert.deepEqual(connect.attributes.find((kv: { key: string }) => kv.key === 'ci').value, { boolValue: false });
});

test('otlp: the decoding is strict enough to catch what a collector would not take', () => {
  const record = (attributes: unknown[]) => ({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: '1', eventName: 'start', attributes }] }] }] });
  for (const wrong of [{ intValue: 3 }, { boolValue: 'true' }, { doubleValue: '1.5' }, { string_value: 'x' }, { stringvalue: 'x' }]) {
    const body = record([{ key: 'k', value: wrong }]);
    assert.notDeepEqual(throughTheProto(body), body, JSON.stringify(wrong));
  }
  const snake = { resourceLogs: [{ scopeLogs: [{ logRecords: [{ time_unix_nano: '1', eventName: 'start' }] }] }] };
  assert.notDeepEqual(throughTheProto(snake), snake);
});

test('otlp: no OTEL_* variable reaches the wire, the built file read by a real process', async (t) => {
  const server = await endpoint(t);
  const { args } = setup(t);
  const result = await runBundle(['fatal', '--process', 'p', '--thread', 't', ...args(server.url, 'otlp')], OTEL_ENV);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(server.requests.length, 1, 'sent to --endpoint, not to OTEL_EXPORTER_OTLP_ENDPOINT');
  const [request] = server.requests;
  assert.equal(request.path, '/v1/logs');
  assert.equal(request.headers['content-type'], 'application/json', 'not OTEL_EXPORTER_OTLP_PROTOCOL');
  assert.equal(request.headers['content-encoding'], undefined, 'not OTEL_EXPORTER_OTLP_COMPRESSION');
  assert.doesNotMatch(JSON.stringify(request.headers) + request.body, /user-secret/);
  assert.deepEqual(throughTheProto(JSON.parse(request.body)), JSON.parse(request.body));
});

test('otlp: events queued while the collector is down go once, each event.id exactly once, and the log holds the wire', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 503 });
  const { args, state } = setup(t);
  const log = path.join(state, 'sent.log');
  const run = inProcess([...args(server.url, 'otlp'), '--log-file', log]);
  for (const command of [['start'], ['stop'], ['cloud-unavailable', '--reason', 'r']]) await run(command);
  const queued = waitingEvents(state);
  assert.equal(queued.length, 3);
  assert.ok(queued.every((event) => typeof event.api_key === 'string' && event.properties.distinct_id), 'the outbox keeps capture events');
  server.setBehavior({ kind: 'accept' });
  await run(['flush']);
  await run(['flush']);
  const ids = server.requests.filter((r) => r.status === 200).flatMap((r) => r.events.map((e) => e.uuid));
  assert.deepEqual(ids.sort(), queued.map((event) => event.uuid).sort());
  assert.deepEqual(waitingEvents(state), []);
  const sent = server.requests.filter((r) => r.status === 200);
  assert.equal(sent.length, 1, 'one request for the three');
  assert.deepEqual(throughTheProto(JSON.parse(sent[0].body)), JSON.parse(sent[0].body));
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(lines.at(-1), sent[0].body, 'the log holds what went on the wire');
  assert.equal(JSON.parse(lines[0]).payload.resourceLogs[0].scopeLogs[0].logRecords[0].eventName, 'start', 'a queued event is logged as the body the sink would send');
});

test('otlp: queued events past 2 MB a request are split by their stored size, each once', async (t) => {
  const server = await endpoint(t);
  const { args, state } = setup(t);
  const { outbox } = openTestStore(state);
  const blob = 'x'.repeat(900_000);
  const planted = Array.from({ length: 3 }, () => ({ api_key: 'phc_test', event: 'start', uuid: uuid(), timestamp: NOW.toISOString(), properties: { distinct_id: 'd', product: 'test-daemon', product_version: '1.44.0', blob } }));
  for (const event of planted) store(outbox, event);
  await inProcess(args(server.url, 'otlp'))(['flush']);
  assert.deepEqual(server.requests.map((request) => `${request.status} ${request.events.length}`), ['200 2', '200 1'], 'two of about 0.9 MB fit in 2 MB, three do not');
  assert.deepEqual(server.requests.flatMap((request) => request.events.map((event) => event.uuid)), planted.map((event) => event.uuid));
  assert.deepEqual(waitingEvents(state), []);
});

test('otlp and ga4: --dry-run prints the exact body the sink sends, and the log holds it too', async (t) => {
  for (const sink of ['otlp', 'ga4']) {
    const server = await endpoint(t);
    const { args, state } = setup(t);
    const log = path.join(state, 'sent.log');
    const argv = ['fatal', '--process', 'p', '--thread', 't', '--line', '9', ...args(server.url, sink)];
    // Each run with ids counted from the start, so both make the same event.
    const dry = ctx({ uuid: fakeContext().uuid });
    assert.equal(await main([...argv, '--dry-run'], dry), 0);
    assert.equal(await main([...argv, '--log-file', log], ctx({ uuid: fakeContext().uuid })), 0);
    const wire = server.requests[0].body;
    assert.equal(dry.out.join(''), `${wire}\n`, `${sink}: dry run shows what goes on the wire`);
    assert.equal(readFileSync(log, 'utf8'), `${wire}\n`, `${sink}: the log holds what went on the wire`);
    assert.doesNotMatch(dry.err.join(''), /api_secret|test_secret/, 'the secret is not shown');
  }
});

test('ga4: every event command passes GA4\'s documented rules, names mapped and values cut', async (t) => {
  const server = await endpoint(t);
  const { args } = setup(t);
  await everyCommand(inProcess(args(server.url, 'ga4')));
  assert.equal(server.requests.length, COMMANDS.length);
  for (const [i, request] of server.requests.entries()) {
    const url = new URL(request.path, server.url);
    assert.deepEqual([url.searchParams.get('measurement_id'), url.searchParams.get('api_secret')], [GA4.ga4MeasurementId, GA4.ga4ApiSecret]);
    assert.deepEqual(ga4Violations(url, request.body, NOW), [], `${COMMANDS[i]}: ${request.body}`);
    assert.equal(request.status, 204);
    const body = JSON.parse(request.body);
    assert.equal(body.events[0].name, COMMANDS[i].replaceAll('-', '_'));
    assert.match(body.client_id, /^[0-9a-f-]{36}$/);
    assert.equal(body.events[0].timestamp_micros, NOW.getTime() * 1000);
  }
  const fatal = JSON.parse(server.requests[2].body).events[0].params;
  assert.equal(Object.keys(fatal).length, 25, 'the event with the most properties fills GA4\'s 25');
  assert.equal(fatal.fatal_message, 'x'.repeat(100));
  assert.equal(fatal.fatal_line, 120);
  assert.equal(JSON.parse(server.requests[3].body).events[0].params.cloud_error_codes, 'ECONNREFUSED,ETIMEDOUT');
  assert.equal(JSON.parse(server.requests[0].body).events[0].params.host_is_k8s_node, 'false');
});

test('ga4: queued events go at most 25 a request, one client_id each, every request within the rules', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 503 });
  const { args, state } = setup(t);
  const run = inProcess(args(server.url, 'ga4'));
  for (let i = 0; i < 30; i++) await run(['command-start', '--name', `step${i}`]);
  assert.equal(waitingEvents(state).length, 30);
  server.setBehavior({ kind: 'accept' });
  await run(['flush']);
  const sent = server.requests.filter((r: ReceivedRequest) => r.status === 204);
  assert.deepEqual(sent.map((r) => JSON.parse(r.body).events.length), [25, 5]);
  for (const request of sent) assert.deepEqual(ga4Violations(new URL(request.path, server.url), request.body, NOW), []);
  assert.equal(new Set(sent.flatMap((r) => r.events.map((e) => e.uuid))).size, 30);
  assert.deepEqual(waitingEvents(state), []);
});

test('ga4: an event GA4 would drop without a word never leaves: refused before it is queued, and before it is sent', async (t) => {
  const server = await endpoint(t);
  const { args, state } = setup(t);
  const c = ctx();
  const settings = resolveSettings({ endpoint: server.url, sink: 'ga4', 'state-dir': state }, {}, VENDOR);
  const opened = openTestStore(state);
  const { stateDir, outbox } = opened;
  const delivery = { settings, ctx: c, outbox, notBefore: 0, report: newReport() };
  const properties = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`extra_${i}`, i]));
  const tooMany = { api_key: '', event: 'start', uuid: '00000000-0000-4000-8000-0000000000aa', timestamp: NOW.toISOString(), properties: { distinct_id: 'd', ...properties } };
  const outcome = await deliverNew(delivery, tooMany);
  assert.equal(outcome.kind, 'dropped');
  assert.match(outcome.reason, /31 parameters, GA4 takes 25/);
  assert.deepEqual(waitingEvents(state), [], 'not queued');
  assert.deepEqual(delivery.report.history.map((entry) => [entry.uuid.slice(-2), entry.outcome, entry.reason]), [['aa', 'dropped', 'not queued: ga4 would not take it (31 parameters, GA4 takes 25)']], 'noted in the report the books record');

  // Queued four days ago, before a long outage: GA4 drops events older than 72 hours.
  store(outbox, { ...tooMany, uuid: '00000000-0000-4000-8000-0000000000bb', timestamp: new Date(NOW.getTime() - 4 * 86_400_000).toISOString(), properties: { distinct_id: 'd' } });
  assert.equal(await main(['flush', ...args(server.url, 'ga4')], c), 0, c.err.join(''));
  assert.equal(server.requests.length, 0, 'nothing was sent');
  assert.deepEqual(waitingEvents(state), []);
  const history = readHistory(stateDir).map((entry) => [entry.uuid.slice(-2), entry.outcome, entry.reason]);
  assert.deepEqual(history, [
    ['bb', 'dropped', 'ga4 would not take it (it is older than the 72 hours GA4 takes)'],
  ]);
});

test('a sink other than posthog, otlp or ga4 is a usage error naming it, from the flag or the variable', async (t) => {
  const { args } = setup(t);
  const flag = await runBundle(['start', ...args('http://127.0.0.1:9', 'kafka')]);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /^[^\n]*--sink must be one of posthog, otlp, ga4, got "kafka"[^\n]*\n$/);
  const variable = await runBundle(['start', '--endpoint', 'http://127.0.0.1:9'], { TELEMETRY_SINK: 'Otlp' });
  assert.equal(variable.code, 2);
  assert.match(variable.stderr, /TELEMETRY_SINK must be one of posthog, otlp, ga4, got "Otlp"/);
  const noIds = await runBundle(['start', ...args('http://127.0.0.1:9', 'ga4')]);
  assert.equal(noIds.code, 2, 'this build has no GA4 ids');
  assert.match(noIds.stderr, /--sink ga4 needs the build file's "ga4MeasurementId" and "ga4ApiSecret"/);
});

test('the build file\'s sink fields are checked, each error naming the field', () => {
  const base = { product: 'p', endpoint: 'https://e.example', configDir: '/etc/p', stateDir: '/var/lib/p' };
  const problem = (extra: Record<string, unknown>) => {
    try {
      validateVendorConfig({ ...base, ...extra }, 'vendor.json', optionNames());
      return '';
    } catch (error) {
      return (error as Error).message;
    }
  };
  assert.equal(problem({ sink: 'otlp' }), '', 'an OTLP build needs no PostHog key');
  assert.equal(problem({ sink: 'ga4', ...GA4 }), '');
  assert.match(problem({}), /"apiKey" must be a non-empty string: the posthog sink sends PostHog's project key/);
  assert.match(problem({ sink: 'splunk' }), /"sink" must be one of posthog, otlp, ga4, got "splunk"/);
  assert.match(problem({ sink: 'ga4' }), /"sink" ga4 needs the build file's "ga4MeasurementId" and "ga4ApiSecret"/);
  assert.match(problem({ sink: 'otlp', otlpHeaders: ['Authorization: x'] }), /"otlpHeaders" must be an object/);
  assert.match(problem({ sink: 'otlp', otlpHeaders: { Authorization: 7 } }), /"otlpHeaders" Authorization must be a string/);
  assert.match(problem({ sink: 'otlp', otlpHeaders: { 'X-A': 'a\r\nHost: evil' } }), /"otlpHeaders" X-A must be a string without control characters/);
  assert.match(problem({ sink: 'otlp', otlpHeaders: { 'Content-Type': 'application/x-protobuf' } }), /"otlpHeaders" key Content-Type is set by the tool itself/);
  assert.match(problem({ sink: 'otlp', otlpHeaders: { 'bad name': 'x' } }), /"otlpHeaders" key "bad name" is not an HTTP header name/);
  assert.match(problem({ sink: 'ga4', ...GA4, ga4MeasurementId: 'UA-1234-1' }), /"ga4MeasurementId" must be a GA4 measurement id/);
});

test('docs/sinks.md names every property an event carries, so GA4\'s mapping of each is written down', async (t) => {
  const server = await endpoint(t);
  const { args } = setup(t);
  await everyCommand(inProcess(['--api-key', 'phc_test', ...args(server.url, 'posthog')]));
  const properties = new Set(server.events().flatMap((event) => Object.keys(event.properties as object)));
  assert.ok(properties.size > 30);
  const doc = readFileSync(path.join(__dirname, '../../docs/sinks.md'), 'utf8');
  const ga4Section = doc.slice(doc.indexOf('## ga4'), doc.indexOf('## The dashboard module'));
  const named = (name: string) => ga4Section.includes(`\`${name}\``) || [...ga4Section.matchAll(/`([a-z_]+)\*`/g)].some(([, prefix]) => name.startsWith(prefix));
  assert.deepEqual([...properties].filter((name) => !named(name)), []);
});
