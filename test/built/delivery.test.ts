import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import type { Behavior } from '../../scripts/endpoint.ts';
import { main } from '../../src/before-consent/run.ts';
import { endpoint, fakeContext, listTree, makeRoot, outboxFolders, PROJECT_DIR, runBundle, spawnBundle, tempDir, trapViolations, waitingEvents, whenDir } from '../support/helpers.ts';

/** The built file against a real server on 127.0.0.1 that misbehaves in every way we know. */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

const TLS = {
  key: readFileSync(path.join(PROJECT_DIR, 'test/fixtures/tls/localhost.key'), 'utf8'),
  cert: readFileSync(path.join(PROJECT_DIR, 'test/fixtures/tls/localhost.crt'), 'utf8'),
};
const CA_FILE = path.join(PROJECT_DIR, 'test/fixtures/tls/localhost.crt');

function setup(t: TestContext) {
  const base = tempDir(t);
  const state = path.join(base, 'state');
  const root = makeRoot(t, { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'etc/machine-id': '00112233445566778899aabbccddeeff\n' });
  const args = (url: string) => ['--endpoint', url, '--state-dir', state, '--config-dir', base, '--root', root];
  return { base, state, root, args, queued: () => waitingEvents(state) };
}

function backoffOf(state: string): Record<string, { failures: number; next: number }> {
  return JSON.parse(readFileSync(path.join(state, 'state.json'), 'utf8')).backoff;
}

const BUDGET_MS = 1500;
/** Generous: the budget is counted from process start; CI machines are slow and shared. */
const MARGIN_MS = 1500;

const FAULTS: { name: string; behavior: Behavior | 'refused'; tls?: boolean; outcome: 'queued' | 'dropped' | 'sent'; requests?: number }[] = [
  { name: 'refuses the connection', behavior: 'refused', outcome: 'queued' },
  { name: 'hangs before the headers', behavior: { kind: 'hang' }, outcome: 'queued', requests: 1 },
  { name: 'hangs in the middle of the body', behavior: { kind: 'hang-mid-body' }, outcome: 'queued', requests: 1 },
  { name: 'resets the connection', behavior: { kind: 'reset' }, outcome: 'queued', requests: 3 },
  { name: 'answers 500', behavior: { kind: 'status', status: 500 }, outcome: 'queued', requests: 3 },
  { name: 'answers 429', behavior: { kind: 'status', status: 429 }, outcome: 'queued', requests: 3 },
  { name: 'answers 503 with a Retry-After beyond the budget', behavior: { kind: 'status', status: 503, headers: { 'retry-after': '120' } }, outcome: 'queued', requests: 1 },
  // Alone, a refused event is kept: only a batch whose other events are taken shows the fault is in it.
  { name: 'answers 400 to a lone event', behavior: { kind: 'status', status: 400 }, outcome: 'queued', requests: 1 },
  { name: 'answers 404 (a misrouted load balancer)', behavior: { kind: 'status', status: 404 }, outcome: 'queued', requests: 1 },
  { name: 'drips its answer slower than the budget', behavior: { kind: 'drip', intervalMs: 400 }, outcome: 'queued', requests: 1 },
  { name: 'presents a self-signed certificate', behavior: { kind: 'accept' }, tls: true, outcome: 'queued', requests: 0 },
];

for (const fault of FAULTS) {
  test(`an endpoint that ${fault.name}: exit 0 within the budget, event ${fault.outcome}`, async (t) => {
    const server = await endpoint(t, fault.behavior === 'refused' ? { kind: 'accept' } : fault.behavior, fault.tls ? { tls: TLS } : {});
    if (fault.behavior === 'refused') await server.close();
    const { args, queued } = setup(t);
    const result = await runBundle(['fatal', '--process', 'd', '--thread', 't', '--timeout', String(BUDGET_MS), ...args(server.url)]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.ok(result.ms < BUDGET_MS + MARGIN_MS, `held the caller ${Math.round(result.ms)} ms`);
    if (fault.requests !== undefined) assert.equal(server.requests.length, fault.requests, 'requests made');
    const inQueue = queued();
    assert.equal(inQueue.length, fault.outcome === 'queued' ? 1 : 0, 'events in the queue');
    if (fault.outcome === 'queued') assert.equal(inQueue[0].event, 'fatal');
  });
}

test('a 503 with a Retry-After that fits the budget is retried after that delay and delivered', async (t) => {
  const server = await endpoint(t, [{ kind: 'status', status: 503, headers: { 'retry-after': '1' } }, { kind: 'accept' }]);
  const { args, queued } = setup(t);
  const result = await runBundle(['start', '--timeout', '4000', ...args(server.url)]);
  assert.equal(result.code, 0);
  assert.equal(server.requests.length, 2);
  assert.equal(server.events().length, 1);
  assert.ok(result.ms >= 1000, 'waited for Retry-After');
  assert.deepEqual(queued(), []);
});

test('a slow but steady answer inside the budget is delivered', async (t) => {
  const server = await endpoint(t, { kind: 'drip', intervalMs: 5 });
  const { args, queued } = setup(t);
  const result = await runBundle(['start', ...args(server.url)]);
  assert.equal(result.code, 0);
  assert.equal(server.events().length, 1);
  assert.deepEqual(queued(), []);
});

test('the trusted certificate of the same TLS server is accepted (https verified, not disabled); the connection opened while the event was built carries it, no second one', async (t) => {
  const server = await endpoint(t, { kind: 'accept' }, { tls: TLS });
  const { args, queued } = setup(t);
  const result = await runBundle(['start', ...args(server.url)], { NODE_EXTRA_CA_CERTS: CA_FILE });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(server.events().length, 1);
  assert.equal(server.connections(), 1);
  assert.deepEqual(queued(), []);
});

test('queued events go out in one gzip batch to /batch/ with their original uuid and timestamp, exactly once', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 500 });
  const { args, queued, state } = setup(t);
  for (const command of [['start'], ['stop', '--exit-code', '3']]) {
    assert.equal((await runBundle([...command, '--timeout', '800', ...args(server.url)])).code, 0);
  }
  const waiting = queued();
  assert.equal(waiting.length, 2);
  const backoff = backoffOf(state)[`${server.url}/`];
  assert.ok(backoff.next > Date.now(), 'the failure is remembered across runs, for this endpoint');
  const requestsBefore = server.requests.length;
  // Within the back-off window a new event is queued without touching the network.
  assert.equal((await runBundle(['cloud-unavailable', '--reason', 'r', ...args(server.url)])).code, 0);
  assert.equal(server.requests.length, requestsBefore);
  assert.equal(queued().length, 3);
  assert.match((await runBundle(['status', ...args(server.url)])).stdout, /\(3 events queued\)/);

  server.setBehavior({ kind: 'accept' });
  const flushed = await runBundle(['flush', ...args(server.url)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, /sent 3 queued events/);
  const batch = server.requests.at(-1);
  assert.equal(batch?.path, '/batch/');
  assert.equal(batch?.headers['content-encoding'], 'gzip');
  assert.equal(batch?.status, 200, 'the endpoint could gunzip and validate it');
  const envelope = JSON.parse(batch?.body ?? '{}');
  assert.equal(typeof envelope.api_key, 'string');
  assert.ok(!Number.isNaN(Date.parse(envelope.sent_at)));
  assert.ok(envelope.batch.every((event: Record<string, unknown>) => !('api_key' in event) && !('token' in event)));
  const sentIds = envelope.batch.map((e: Record<string, string>) => `${e.uuid} ${e.timestamp}`).sort();
  assert.equal(sentIds.length, 3);
  for (const original of waiting) assert.ok(sentIds.includes(`${original.uuid} ${original.timestamp}`), 'kept uuid and timestamp');
  assert.deepEqual(queued(), []);
  assert.deepEqual(backoffOf(state), {}, 'success clears the back-off');
  assert.equal((await runBundle(['flush', ...args(server.url)])).code, 0);
  assert.equal(server.events().length, 3, 'nothing was sent twice');
});

test('the next event command delivers what waits once the back-off has passed, and not before', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 503 });
  const { state, root } = setup(t);
  const args = ['--endpoint', server.url, '--state-dir', state, '--root', root];
  const at = (ms: number) => fakeContext({ now: () => new Date(Date.UTC(2026, 0, 2) + ms) });
  await main(['start', ...args], at(0));
  assert.equal(waitingEvents(state).length, 1);
  const { next } = backoffOf(state)[`${server.url}/`];
  server.setBehavior({ kind: 'accept' });
  const connections = server.connections();
  await main(['stop', ...args], at(next - Date.UTC(2026, 0, 2) - 1));
  assert.equal(server.connections(), connections, 'inside the back-off not even a connection is opened');
  await main(['fatal', '--process', 'p', '--thread', 't', ...args], at(next - Date.UTC(2026, 0, 2)));
  assert.deepEqual(server.events().map((e) => e.event).sort(), ['fatal', 'start', 'stop']);
  assert.deepEqual(waitingEvents(state), []);
  assert.deepEqual(backoffOf(state), {}, 'success clears the back-off');
});

test('a corrupt or truncated outbox file is set aside in corrupt/ and reported; the rest is delivered', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 500 });
  const { args, queued, state } = setup(t);
  await runBundle(['start', '--timeout', '500', ...args(server.url)]);
  const torn = '1767225600000-00000000-0000-4000-8000-000000000001.json';
  writeFileSync(path.join(state, 'outbox', 'new', torn), '{"api_key":"k","event":"st');
  server.setBehavior({ kind: 'accept' });
  const flushed = await runBundle(['flush', ...args(server.url)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, /sent 1 queued event,.*1 corrupt file set aside/);
  assert.deepEqual(outboxFolders(state).corrupt, [torn]);
  assert.deepEqual(queued(), []);
  assert.equal(server.events().length, 1);
});

test('the state dir and its outbox folders are 0700, every file in them 0600', async (t) => {
  const down = await endpoint(t);
  await down.close();
  const { args, state } = setup(t);
  await runBundle(['start', '--timeout', '500', ...args(down.url)]);
  for (const dir of ['', 'outbox', 'outbox/tmp', 'outbox/new', 'outbox/cur', 'outbox/corrupt']) assert.equal(statSync(path.join(state, dir)).mode & 0o777, 0o700, `${dir || 'state dir'}`);
  const files = listTree(state);
  assert.deepEqual(files.filter((f) => f.startsWith('outbox/')).length, 1, 'the queued event');
  for (const file of files) assert.equal(statSync(path.join(state, file)).mode & 0o777, 0o600, file);
});

test('flush with the receiver still down exits 1, naming how many events stay queued', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 502 });
  const { args, queued } = setup(t);
  await runBundle(['start', '--timeout', '500', ...args(server.url)]);
  const flushed = await runBundle(['flush', '--timeout', '800', ...args(server.url)]);
  assert.equal(flushed.code, 1);
  assert.match(flushed.stderr, /1 event still queued: HTTP 502/);
  assert.equal(queued().length, 1);
});

test('flush sends nothing when telemetry is opted out', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 500 });
  const { args, queued } = setup(t);
  await runBundle(['start', '--timeout', '500', ...args(server.url)]);
  server.setBehavior({ kind: 'accept' });
  const before = server.requests.length;
  const flushed = await runBundle(['flush', ...args(server.url)], { DO_NOT_TRACK: '1' });
  assert.equal(flushed.code, 0);
  assert.equal(server.requests.length, before);
  assert.equal(queued().length, 1);
});

test('disable deletes queued events: consent withdrawn covers what was not sent yet', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 500 });
  const { args, queued, state, base } = setup(t);
  await runBundle(['start', '--timeout', '500', ...args(server.url)]);
  assert.equal(queued().length, 1);
  const result = await runBundle(['disable', '--config-dir', base, '--state-dir', state]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /deleted 1 queued event$/m);
  assert.deepEqual(queued(), []);
});

test('--background returns at once with the event already on disk, even when the endpoint hangs; the detached child sends it, and it waits again when no answer comes', async (t) => {
  const server = await endpoint(t, { kind: 'hang' });
  const { args, state } = setup(t);
  const result = await runBundle(['start', '--background', '--timeout', '1500', ...args(server.url)]);
  assert.deepEqual([result.code, result.stdout, result.stderr], [0, '', '']);
  assert.ok(result.ms < 1500, `the caller was held ${Math.round(result.ms)} ms`);
  const stored = outboxFolders(state);
  assert.equal(stored.new.length + stored.cur.length, 1, 'stored before the caller returned');
  await server.received(1);
  assert.equal(server.requests[0].path, '/batch/', 'sent as any waiting event is');
  await whenDir(path.join(state, 'outbox', 'new'), () => outboxFolders(state).new.length === 1 && outboxFolders(state).cur.length === 0, 'the child to give the event back at its deadline');
  assert.equal(waitingEvents(state)[0].event, 'start');
});

test('--background still rejects bad input in the caller, and starts nothing when opted out', async (t) => {
  const server = await endpoint(t);
  const { args, base } = setup(t);
  const bad = await runBundle(['stop', '--background', '--exit-code', 'x', ...args(server.url)]);
  assert.equal(bad.code, 2);
  const optedOut = await runBundle(['start', '--background', ...args(server.url)], { DO_NOT_TRACK: '1' });
  assert.equal(optedOut.code, 0);
  assert.deepEqual(listTree(base).filter((f) => !f.startsWith('anon-stats')), [], 'nothing was stored, so no child could send anything');
  assert.equal(server.requests.length, 0);
});

test('a run killed mid-send (kill -9) leaves its event claimed in cur/; as soon as its pid is dead the next run delivers it, once', async (t) => {
  const server = await endpoint(t, { kind: 'hang' });
  const { args, state, queued } = setup(t);
  const child = spawnBundle(['start', '--timeout', '20000', ...args(server.url)]);
  await server.received(1);
  const { cur } = outboxFolders(state);
  assert.equal(cur.length, 1, 'the event was written ahead before the send began');
  assert.match(cur[0], new RegExp(`\\.json\\.${child.pid}-\\d+$`), 'claimed by the run sending it');
  child.kill('SIGKILL');
  assert.equal(await child.exited, 'SIGKILL');
  assert.match((await runBundle(['status', ...args(server.url)])).stdout, /\(1 event queued\)/, 'status counts it as not sent');
  server.setBehavior({ kind: 'accept' });
  const flushed = await runBundle(['flush', ...args(server.url)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, /sent 1 queued event,/);
  assert.deepEqual(server.events().map((e) => e.event), ['start']);
  assert.deepEqual(queued(), []);
  assert.deepEqual(outboxFolders(state).cur, []);
  assert.equal((await runBundle(['flush', ...args(server.url)])).code, 0);
  assert.equal(server.events().length, 1, 'delivered once');
});

test('the --background child finishes its work when its service is stopped with SIGTERM', async (t) => {
  const down = await endpoint(t);
  await down.close();
  const server = await endpoint(t, { kind: 'hang' });
  const { args, queued, state } = setup(t);
  await runBundle(['start', '--timeout', '500', ...args(down.url)]);
  assert.equal(queued().length, 1);
  // Started as --background starts it; the back-off is the down endpoint's, not this one's.
  const child = spawnBundle(['start', '--timeout', '1500', ...args(server.url)], { ANONYMOUS_STATISTICS_BACKGROUND_CHILD: '1' });
  await server.received(1);
  child.kill('SIGTERM');
  assert.equal(await child.exited, 0, 'it was not killed by SIGTERM; it ended at its own deadline');
  assert.equal(queued().length, 1, 'and gave back the event it could not deliver');
  assert.deepEqual(outboxFolders(state).cur, []);
});

test('a failed background delivery is visible where a person looks: history has its reason, status the back-off and the next attempt', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 503 });
  const { args, state } = setup(t);
  assert.equal((await runBundle(['start', '--background', ...args(server.url)])).code, 0);
  const ledger = () => (existsSync(path.join(state, 'history.jsonl')) ? readFileSync(path.join(state, 'history.jsonl'), 'utf8') : '');
  await whenDir(state, () => ledger().includes('"status":503'), 'the background sender to record its failure');
  const history = JSON.parse((await runBundle(['history', '--json', ...args(server.url)])).stdout) as { outcome: string; reason: string; status?: number }[];
  assert.ok(history.some((entry) => entry.outcome === 'queued' && entry.status === 503 && /HTTP 503/.test(entry.reason)), 'the background sender\'s failure, with its reason');
  const status = await runBundle(['status', '--json', ...args(server.url)]);
  const backoff = JSON.parse(status.stdout).receiver_backoff;
  assert.equal(backoff.failures, 1);
  assert.ok(Date.parse(backoff.next_attempt) > Date.now(), 'the next attempt is ahead');
  assert.match((await runBundle(['status', ...args(server.url)])).stdout, /the receiver failed 1 time in a row \(see history\); next attempt after \d{4}-/);
});
