import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import type { Behavior } from '../scripts/endpoint.ts';
import { BUNDLE, endpoint, listTree, makeRoot, NODE_UNDER_TEST, PROJECT_DIR, runBundle, tempDir, trapViolations } from './helpers.ts';

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
  return { base, state, args, queued: () => queuedEvents(state) };
}

function queuedEvents(state: string): Record<string, any>[] {
  const dir = path.join(state, 'outbox', 'new');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(path.join(dir, name), 'utf8')));
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
  { name: 'answers 400 (the event will never be accepted)', behavior: { kind: 'status', status: 400 }, outcome: 'dropped', requests: 1 },
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

test('the trusted certificate of the same TLS server is accepted (https verified, not disabled)', async (t) => {
  const server = await endpoint(t, { kind: 'accept' }, { tls: TLS });
  const { args, queued } = setup(t);
  const result = await runBundle(['start', ...args(server.url)], { NODE_EXTRA_CA_CERTS: CA_FILE });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(server.events().length, 1);
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
  assert.ok(existsSync(path.join(state, 'delivery-backoff.json')), 'the failure is remembered across runs');
  const requestsBefore = server.requests.length;
  // Within the back-off window a new event is queued without touching the network.
  assert.equal((await runBundle(['cloud-unavailable', '--reason', 'r', ...args(server.url)])).code, 0);
  assert.equal(server.requests.length, requestsBefore);
  assert.equal(queued().length, 3);

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
  assert.equal((await runBundle(['flush', ...args(server.url)])).code, 0);
  assert.equal(server.events().length, 3, 'nothing was sent twice');
});

test('the next event command delivers the queue once the back-off has passed', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 503 });
  const { args, queued, state } = setup(t);
  await runBundle(['start', '--timeout', '600', ...args(server.url)]);
  assert.equal(queued().length, 1);
  writeFileSync(path.join(state, 'delivery-backoff.json'), JSON.stringify({ failures: 1, nextAttempt: 0 }));
  server.setBehavior({ kind: 'accept' });
  assert.equal((await runBundle(['stop', ...args(server.url)])).code, 0);
  assert.deepEqual(server.events().map((e) => e.event).sort(), ['start', 'stop']);
  assert.deepEqual(queued(), []);
  assert.equal(existsSync(path.join(state, 'delivery-backoff.json')), false, 'success clears the back-off');
});

/** Ten of each kind: the crash-loop limit lets ten events of one kind through per hour. */
const FIFTY_EVENTS = [
  ['start'],
  ['stop', '--exit-code', '1'],
  ['fatal', '--process', 'p', '--thread', 't'],
  ['cloud-connect-fail', '--code', 'E'],
  ['cloud-deps-fail', '--dependency', 'd'],
].flatMap((command) => Array.from({ length: 10 }, (_, i) => [...command, '--product-version', `1.0.${i}`]));

test('50 event commands at once with the endpoint down leave 50 whole events; concurrent flushers deliver each exactly once', async (t) => {
  const down = await endpoint(t);
  await down.close();
  const { args, queued, state } = setup(t);
  const results = await Promise.all(FIFTY_EVENTS.map((command) => runBundle([...command, '--timeout', '10000', ...args(down.url)])));
  assert.ok(results.every((r) => r.code === 0));
  const waiting = queued();
  assert.equal(waiting.length, 50);
  assert.deepEqual(
    waiting.map((e) => `${e.event} ${e.properties.product_version}`).sort(),
    FIFTY_EVENTS.map((command) => `${command[0]} ${command.at(-1)}`).sort(),
  );
  const up = await endpoint(t);
  writeFileSync(path.join(state, 'delivery-backoff.json'), JSON.stringify({ failures: 1, nextAttempt: 0 }));
  await Promise.all([
    ...Array.from({ length: 4 }, () => runBundle(['flush', ...args(up.url)])),
    ...Array.from({ length: 4 }, () => runBundle(['install', '--result', 'success', ...args(up.url)])),
  ]);
  await runBundle(['flush', ...args(up.url)]);
  const received = up.events().map((e) => e.uuid as string);
  assert.equal(new Set(received).size, received.length, 'no event was delivered twice');
  assert.equal(received.length, 54);
  for (const event of waiting) assert.ok(received.includes(event.uuid), `queued ${event.uuid} was delivered`);
  assert.deepEqual(queued(), []);
});

test('a corrupt or truncated queue file is set aside and reported; the rest is delivered', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 500 });
  const { args, queued, state } = setup(t);
  await runBundle(['start', '--timeout', '500', ...args(server.url)]);
  writeFileSync(path.join(state, 'queue', '20260101000000-truncated.json'), '{"api_key":"k","event":"st');
  server.setBehavior({ kind: 'accept' });
  const flushed = await runBundle(['flush', ...args(server.url)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, /sent 1 queued events.*1 corrupt files set aside/);
  assert.ok(existsSync(path.join(state, 'queue', '20260101000000-truncated.json.corrupt')));
  assert.deepEqual(queued(), []);
});

test('queue files are 0600 in a 0700 directory', async (t) => {
  const down = await endpoint(t);
  await down.close();
  const { args, state } = setup(t);
  await runBundle(['start', ...args(down.url)]);
  const { statSync } = await import('node:fs');
  assert.equal(statSync(path.join(state, 'queue')).mode & 0o777, 0o700);
  for (const name of readdirSync(path.join(state, 'queue'))) assert.equal(statSync(path.join(state, 'queue', name)).mode & 0o777, 0o600);
});

test('a state dir that is a symlink (planted in a shared place) is not followed: the event is dropped, exit 0', async (t) => {
  const down = await endpoint(t);
  await down.close();
  const base = tempDir(t);
  const target = path.join(base, 'attacker-owned');
  mkdirSync(target);
  const state = path.join(base, 'state');
  symlinkSync(target, state);
  const result = await runBundle(['start', '--endpoint', down.url, '--state-dir', state, '--config-dir', base, '--root', makeRoot(t, {})]);
  assert.equal(result.code, 0);
  assert.deepEqual(listTree(target), []);
});

test('an unusable state dir (a file where the dir should be) drops the event with exit 0', async (t) => {
  const down = await endpoint(t);
  await down.close();
  const base = tempDir(t);
  writeFileSync(path.join(base, 'blocker'), '');
  const result = await runBundle(['start', '--endpoint', down.url, '--state-dir', path.join(base, 'blocker', 'state'), '--config-dir', base]);
  assert.deepEqual([result.code, result.stderr], [0, '']);
});

test('flush with the receiver still down exits 1, naming how many events stay queued', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 502 });
  const { args, queued } = setup(t);
  await runBundle(['start', '--timeout', '500', ...args(server.url)]);
  const flushed = await runBundle(['flush', '--timeout', '800', ...args(server.url)]);
  assert.equal(flushed.code, 1);
  assert.match(flushed.stderr, /1 events still queued: HTTP 502/);
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
  assert.match(result.stdout, /deleted 1 queued events/);
  assert.deepEqual(queued(), []);
});

test('--background returns at once even when the endpoint hangs; the detached child delivers or queues', async (t) => {
  const server = await endpoint(t, { kind: 'hang' });
  const { args, queued } = setup(t);
  const result = await runBundle(['start', '--background', '--timeout', '1500', ...args(server.url)]);
  assert.deepEqual([result.code, result.stdout, result.stderr], [0, '', '']);
  assert.ok(result.ms < 1500, `the caller was held ${Math.round(result.ms)} ms`);
  for (let waited = 0; waited < 6000 && queued().length === 0; waited += 100) await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.requests.length, 1, 'the child sent the event');
  assert.equal(queued().length, 1, 'and queued it when the endpoint did not answer');
});

test('--background still rejects bad input in the caller, and starts nothing when opted out', async (t) => {
  const server = await endpoint(t);
  const { args, base } = setup(t);
  const bad = await runBundle(['stop', '--background', '--exit-code', 'x', ...args(server.url)]);
  assert.equal(bad.code, 2);
  const optedOut = await runBundle(['start', '--background', ...args(server.url)], { DO_NOT_TRACK: '1' });
  assert.equal(optedOut.code, 0);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(server.requests.length, 0);
  assert.deepEqual(listTree(base).filter((f) => !f.startsWith('anon-stats')), []);
});

test('a run killed mid-send (kill -9) leaves its event on disk; it is queued once abandoned and then delivered', async (t) => {
  const server = await endpoint(t, { kind: 'hang' });
  const { args, state, queued } = setup(t);
  const { spawn } = await import('node:child_process');
  const child = spawn(NODE_UNDER_TEST, [BUNDLE, 'start', '--timeout', '20000', ...args(server.url)], { stdio: 'ignore' });
  for (let waited = 0; waited < 5000 && server.requests.length === 0; waited += 50) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const pending = readdirSync(path.join(state, 'queue')).filter((name) => name.endsWith('.pending'));
  assert.equal(pending.length, 1, 'the event was written before the send began');
  server.setBehavior({ kind: 'accept' });
  await runBundle(['flush', ...args(server.url)]);
  assert.equal(server.events().length, 0, 'a fresh pending event may belong to a live run: left alone');
  const old = new Date(Date.now() - 3600_000);
  utimesSync(path.join(state, 'queue', pending[0]), old, old);
  const flushed = await runBundle(['flush', ...args(server.url)]);
  assert.match(flushed.stdout, /sent 1 queued events/);
  assert.equal(server.events()[0].event, 'start');
  assert.deepEqual(queued(), []);
});

test('the --background child finishes its work when its service is stopped with SIGTERM', async (t) => {
  const server = await endpoint(t, { kind: 'hang' });
  const { args, queued } = setup(t);
  const { spawn } = await import('node:child_process');
  const child = spawn(NODE_UNDER_TEST, [BUNDLE, 'start', '--timeout', '1500', ...args(server.url)], {
    stdio: 'ignore',
    env: { PATH: process.env.PATH, ANONYMOUS_STATISTICS_BACKGROUND_CHILD: '1' },
  });
  for (let waited = 0; waited < 5000 && server.requests.length === 0; waited += 50) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', (exitCode, signal) => r(signal ?? exitCode)));
  assert.equal(code, 0, 'it was not killed by SIGTERM; it ended at its own deadline');
  assert.equal(queued().length, 1, 'and queued the event it could not deliver');
});
