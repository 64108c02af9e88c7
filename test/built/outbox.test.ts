import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { main } from '../../src/before-consent/run.ts';
import { OUTBOX_MAX_BYTES, OUTBOX_MAX_EVENTS, store, type Outbox, type OutboxEvent } from '../../src/after-consent/store/outbox.ts';
import { endpoint, fakeContext, openTestStore, IS_ROOT, makeRoot, outboxFolders, runBundle, spawnBundle, tempDir, trapViolations, waitingEvents } from '../support/helpers.ts';

/**
 * The outbox's guarantees: every event stored is delivered exactly once however many writers
 * and senders race, a kill -9 at any moment loses nothing, the caps hold, a file that is not a
 * whole event is set aside.
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

const MACHINE = { 'etc/machine-id': '00112233445566778899aabbccddeeff\n', 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n' };
const DAY = Date.UTC(2026, 0, 1);

function setup(t: TestContext) {
  const state = path.join(tempDir(t), 'state');
  const root = makeRoot(t, MACHINE);
  const args = (url: string) => ['--endpoint', url, '--state-dir', state, '--root', root];
  return { state, root, args };
}

/** Unlike fakeContext's uuids (00000000-...), so a planted event is never taken for a new one. */
function uuidOf(i: number): string {
  return `a0000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
}

/** A whole capture event as a run of ours stores it, `i` seconds into the day (older first). */
function eventNumber(i: number, properties: Record<string, unknown> = {}): OutboxEvent {
  return { api_key: 'phc_test', event: 'start', uuid: uuidOf(i), timestamp: new Date(DAY + i * 1000).toISOString(), properties: { distinct_id: 'planted-test-id', ...properties } };
}

function outboxOf(state: string): Outbox {
  return openTestStore(state).outbox;
}

function plant(state: string, from: number, count: number, properties?: Record<string, unknown>): string[] {
  mkdirSync(state, { recursive: true, mode: 0o700 });
  const outbox = outboxOf(state);
  const uuids = Array.from({ length: count }, (_, i) => uuidOf(from + i));
  for (let i = 0; i < count; i++) store(outbox, eventNumber(from + i, properties));
  return uuids;
}

function stateFile(state: string): Record<string, any> {
  return JSON.parse(readFileSync(path.join(state, 'state.json'), 'utf8'));
}

/** Every uuid the endpoint accepted, and those it accepted more than once. */
function deliveries(server: { events(): Record<string, unknown>[] }) {
  const uuids = server.events().map((e) => String(e.uuid));
  return { uuids: new Set(uuids), duplicates: uuids.filter((uuid, i) => uuids.indexOf(uuid) !== i) };
}

async function closedEndpoint(t: TestContext): Promise<string> {
  const down = await endpoint(t);
  await down.close();
  return down.url;
}

/** Ten of each kind: the crash-loop limit lets ten events of one kind through per hour. */
const FIFTY_EVENTS = [
  ['start'],
  ['stop', '--exit-code', '1'],
  ['fatal', '--process', 'p', '--thread', 't'],
  ['cloud-connect-fail', '--code', 'E'],
  ['cloud-deps-fail', '--dependency', 'd'],
].flatMap((command) => Array.from({ length: 10 }, (_, i) => [...command, '--product-version', `1.0.${i}`]));

test('50 writers at once with the endpoint down leave 50 whole events; then racing senders deliver every event exactly once', async (t) => {
  const { state, args } = setup(t);
  const down = await closedEndpoint(t);
  const writers = await Promise.all(FIFTY_EVENTS.map((command) => runBundle([...command, '--timeout', '10000', ...args(down)])));
  assert.deepEqual(writers.map((r) => r.code), FIFTY_EVENTS.map(() => 0));
  const waiting = waitingEvents(state);
  assert.deepEqual(
    waiting.map((e) => `${e.event} ${e.properties.product_version}`).sort(),
    FIFTY_EVENTS.map((command) => `${command[0]} ${command.at(-1)}`).sort(),
  );
  assert.deepEqual([outboxFolders(state).tmp, outboxFolders(state).cur], [[], []], 'nothing half-written or left claimed');

  // 950 more, so the senders' claims (up to 1,000 each) race over the same files.
  const planted = plant(state, 1, OUTBOX_MAX_EVENTS - 50);
  const up = await endpoint(t, { kind: 'drip', intervalMs: 1 });
  const long = ['--timeout', '30000'];
  const racers = await Promise.all([
    ...Array.from({ length: 6 }, () => runBundle(['flush', ...long, ...args(up.url)])),
    ...Array.from({ length: 4 }, () => runBundle(['install', '--result', 'success', ...long, ...args(up.url)])),
  ]);
  assert.deepEqual(racers.map((r) => r.code), racers.map(() => 0), racers.map((r) => r.stderr).join(''));
  assert.equal((await runBundle(['flush', ...args(up.url)])).code, 0);
  const { uuids, duplicates } = deliveries(up);
  assert.deepEqual(duplicates, [], 'no event was delivered twice');
  for (const uuid of [...waiting.map((e) => e.uuid), ...planted]) assert.ok(uuids.has(uuid), `${uuid} was delivered`);
  assert.equal(uuids.size, OUTBOX_MAX_EVENTS + 4, 'and the four installs');
  assert.deepEqual(outboxFolders(state), { tmp: [], new: [], cur: [], corrupt: [] });
});

test('a sender killed -9 while it waits on a hanging receiver leaves its claims; the next run delivers each of them once', async (t) => {
  const { state, args } = setup(t);
  const planted = plant(state, 1, 3);
  const server = await endpoint(t, { kind: 'hang' });
  const sender = spawnBundle(['flush', '--timeout', '20000', ...args(server.url)]);
  await server.received(1);
  assert.deepEqual(outboxFolders(state).new, []);
  assert.deepEqual(outboxFolders(state).cur.map((name) => new RegExp(`\\.json\\.${sender.pid}-\\d+$`).test(name)), [true, true, true], 'all three claimed by the sender');
  sender.kill('SIGKILL');
  assert.equal(await sender.exited, 'SIGKILL');
  server.setBehavior({ kind: 'accept' });
  const flushed = await runBundle(['flush', ...args(server.url)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, /sent 3 queued events/);
  assert.deepEqual([...deliveries(server).uuids].sort(), planted);
  assert.deepEqual(outboxFolders(state), { tmp: [], new: [], cur: [], corrupt: [] });
});

test('kill -9 at any moment of a writer or a sender loses no stored event and never leaves a torn one where it is read', async (t) => {
  const { state, args } = setup(t);
  const planted = plant(state, 1, 300);
  // Each answer takes a while, so kills land before, during and after exchanges.
  const server = await endpoint(t, { kind: 'drip', intervalMs: 3 });
  for (const delayMs of [0, 25, 50, 75, 100, 150, 200, 300]) {
    for (const command of [['flush'], ['fatal', '--process', 'p', '--thread', String(delayMs)]]) {
      const child = spawnBundle([...command, '--timeout', '20000', ...args(server.url)]);
      const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      await child.exited;
      clearTimeout(timer);
    }
  }
  const { new: waiting, cur: claimed, corrupt } = outboxFolders(state);
  assert.deepEqual(corrupt, [], 'every file renamed into new/ or cur/ was whole');
  const stored = [...waiting, ...claimed].map((name) => name.slice(14, 50));
  server.setBehavior({ kind: 'accept' });
  const flushed = await runBundle(['flush', '--timeout', '20000', ...args(server.url)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  const { uuids } = deliveries(server);
  for (const uuid of [...planted, ...stored]) assert.ok(uuids.has(uuid), `${uuid} was delivered`);
  assert.deepEqual([outboxFolders(state).new, outboxFolders(state).cur], [[], []]);
});

test('past 1,000 waiting events the oldest is dropped, and the drop is counted into queue_dropped of the next event', async (t) => {
  const { state, root } = setup(t);
  plant(state, 1, OUTBOX_MAX_EVENTS);
  const down = await closedEndpoint(t);
  const ctx = () => fakeContext({ now: () => new Date(DAY + 86_400_000) });
  assert.equal(await main(['start', '--endpoint', down, '--state-dir', state, '--root', root], ctx()), 0);
  const names = outboxFolders(state).new;
  assert.equal(names.length, OUTBOX_MAX_EVENTS);
  assert.ok(!names.some((name) => name.includes(uuidOf(1))), 'the oldest went');
  assert.ok(names.some((name) => name.includes(uuidOf(2))), 'the next oldest stayed');
  assert.equal(waitingEvents(state).at(-1)?.event, 'start', 'the newest stayed');
  assert.equal(stateFile(state).dropped, 1);

  const server = await endpoint(t);
  assert.equal(await main(['stop', '--endpoint', server.url, '--state-dir', state, '--root', root], ctx()), 0);
  const stop = server.events().find((e) => e.event === 'stop') as { properties: Record<string, unknown> };
  assert.equal(stop.properties.queue_dropped, 1);
  assert.equal(stateFile(state).dropped, 0, 'counted once');
});

test('the caps hold for events stored for the background sender too', async (t) => {
  const { state, root } = setup(t);
  plant(state, 1, OUTBOX_MAX_EVENTS);
  const ctx = fakeContext({ now: () => new Date(DAY + 86_400_000) });
  assert.equal(await main(['start', '--background', '--endpoint', await closedEndpoint(t), '--state-dir', state, '--root', root], ctx), 0);
  const names = outboxFolders(state).new;
  assert.equal(names.length, OUTBOX_MAX_EVENTS);
  assert.ok(!names.some((name) => name.includes(uuidOf(1))), 'the oldest went');
  assert.equal(waitingEvents(state).at(-1)?.event, 'start');
  assert.equal(stateFile(state).dropped, 1);
});

test('past 4 MB of waiting events the oldest are dropped until the rest fits, and counted', async (t) => {
  const { state, root } = setup(t);
  const blob = 'x'.repeat(100_000);
  plant(state, 1, 45, { blob });
  const down = await closedEndpoint(t);
  assert.equal(await main(['start', '--endpoint', down, '--state-dir', state, '--root', root], fakeContext({ now: () => new Date(DAY + 86_400_000) })), 0);
  const dir = path.join(state, 'outbox', 'new');
  const names = outboxFolders(state).new;
  const bytes = names.reduce((sum, name) => sum + lstatSync(path.join(dir, name)).size, 0);
  assert.ok(bytes <= OUTBOX_MAX_BYTES, `${bytes} bytes wait`);
  const dropped = 46 - names.length;
  assert.ok(dropped > 0);
  assert.ok(names.some((name) => name.includes(uuidOf(1 + dropped))) && !names.some((name) => name.includes(uuidOf(dropped))), 'the oldest went first');
  assert.equal(waitingEvents(state).at(-1)?.event, 'start');
  assert.equal(stateFile(state).dropped, dropped);
});

test('a full outbox, 1,000 events, goes to /batch/ in one request, each event once', async (t) => {
  const { state, args } = setup(t);
  const planted = plant(state, 1, OUTBOX_MAX_EVENTS);
  const server = await endpoint(t);
  const flushed = await runBundle(['flush', ...args(server.url)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, new RegExp(`sent ${OUTBOX_MAX_EVENTS} queued events`));
  assert.deepEqual(server.requests.map((request) => `${request.path} ${request.status} ${request.events.length}`), [`/batch/ 200 ${OUTBOX_MAX_EVENTS}`]);
  const { uuids, duplicates } = deliveries(server);
  assert.deepEqual(duplicates, []);
  assert.deepEqual([...uuids].sort(), planted);
  assert.deepEqual(outboxFolders(state), { tmp: [], new: [], cur: [], corrupt: [] });
});

test('a flush puts the caps in force first: of an outbox over 4 MB only the newest within it go, and the drop is counted', async (t) => {
  const { state, root } = setup(t);
  const planted = plant(state, 1, 45, { blob: 'x'.repeat(100_000) });
  const server = await endpoint(t);
  const ctx = () => fakeContext({ now: () => new Date(DAY + 86_400_000) });
  assert.equal(await main(['flush', '--endpoint', server.url, '--state-dir', state, '--root', root], ctx()), 0);
  const sent = [...deliveries(server).uuids].sort();
  const dropped = planted.length - sent.length;
  assert.ok(dropped > 0, 'some went');
  assert.deepEqual(sent, planted.slice(dropped), 'the oldest went first');
  const bytes = server.events().reduce((sum, event) => sum + Buffer.byteLength(JSON.stringify({ api_key: 'phc_test', ...event })), 0);
  assert.ok(bytes <= OUTBOX_MAX_BYTES, `${bytes} bytes sent`);
  assert.ok(bytes + 100_000 > OUTBOX_MAX_BYTES, 'and no more went than the caps had to take');
  assert.equal(stateFile(state).dropped, dropped);
  assert.deepEqual(outboxFolders(state), { tmp: [], new: [], cur: [], corrupt: [] });
});

test('a flush of more than 1,000 waiting events drops the oldest beyond the count cap first, and counts them', async (t) => {
  const { state, root } = setup(t);
  const planted = plant(state, 1, OUTBOX_MAX_EVENTS + 5);
  const server = await endpoint(t);
  assert.equal(await main(['flush', '--endpoint', server.url, '--state-dir', state, '--root', root], fakeContext({ now: () => new Date(DAY + 86_400_000) })), 0);
  assert.deepEqual([...deliveries(server).uuids].sort(), planted.slice(5));
  assert.equal(stateFile(state).dropped, 5);
});

test('files in new/ that are not whole events of ours are set aside in corrupt/, counted, and never sent; the rest is delivered', async (t) => {
  const { state, args } = setup(t);
  const [good] = plant(state, 1, 1);
  const waiting = path.join(state, 'outbox', 'new');
  const name = (i: number) => `${String(DAY + i * 1000).padStart(13, '0')}-${uuidOf(i)}.json`;
  writeFileSync(path.join(waiting, name(2)), '{"api_key":"phc_test","event":"st');
  writeFileSync(path.join(waiting, name(3)), JSON.stringify({ api_key: 'phc_test', event: 'start' }));
  writeFileSync(path.join(waiting, name(4)), '');
  symlinkSync(path.join(state, 'state.json'), path.join(waiting, name(5)));
  mkdirSync(path.join(waiting, name(6)));
  execFileSync('mkfifo', [path.join(waiting, name(7))]);
  const outsiders = IS_ROOT ? 1 : 0;
  if (IS_ROOT) {
    writeFileSync(path.join(waiting, name(8)), JSON.stringify(eventNumber(8)));
    execFileSync('chown', ['65534:65534', path.join(waiting, name(8))]);
  }
  const server = await endpoint(t);
  const flushed = await runBundle(['flush', ...args(server.url)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, new RegExp(`sent 1 queued event,.*, ${6 + outsiders} corrupt files set aside; 0 still queued`));
  assert.deepEqual([...deliveries(server).uuids], [good]);
  assert.deepEqual(outboxFolders(state).corrupt, [2, 3, 4, 5, 6, 7, 8].slice(0, 6 + outsiders).map(name));
  assert.deepEqual(outboxFolders(state).new, []);
});

test('a claim whose sender is a zombie (killed, never reaped: a container without an init) goes back at once', async (t) => {
  const server = await endpoint(t);
  const { state, args } = setup(t);
  const [uuid] = plant(state, 7, 1);
  // A parent that never reaps its child, which exits at once. Not sh's `sleep 0 & ...; exec sleep`:
  // sh could reap the child before its exec, and the test then read a /proc entry that was gone.
  // Perl is Debian's perl-base, on every system.
  const { spawn } = await import('node:child_process');
  const holder = spawn('perl', ['-e', '$| = 1; my $child = fork() // die; exit 0 if $child == 0; print "$child\\n"; sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => holder.kill('SIGKILL'));
  const zombie = Number(await new Promise<string>((resolve) => holder.stdout.once('data', (data) => resolve(String(data).trim()))));
  for (const deadline = Date.now() + 5000; Date.now() < deadline && !/\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8')); ) await new Promise((resolve) => setImmediate(resolve));
  const name = `${String(DAY + 7000).padStart(13, '0')}-${uuid}.json`;
  execFileSync('mv', [path.join(state, 'outbox', 'new', name), path.join(state, 'outbox', 'cur', `${name}.${zombie}-${Date.now()}`)]);
  assert.equal((await runBundle(['flush', ...args(server.url)])).code, 0);
  assert.deepEqual(server.events().map((event) => event.uuid), [uuid]);
});

test('an event stored unfinished is finished before it is sent, once, and a finish cut short by a crash is finished again', async (t) => {
  const server = await endpoint(t);
  const { state, root, args } = setup(t);
  const outbox = outboxOf(state);
  // As --background stores it: its own properties and what to collect with, nothing collected yet.
  store(outbox, { ...eventNumber(1, { exit_code: 3 }), event: 'stop', collect: { root } });
  // A run killed between the two renames of a finish: finished content under the unfinished name.
  writeFileSync(path.join(state, 'outbox', 'new', `${String(DAY + 2000).padStart(13, '0')}-${uuidOf(2)}.unfinished.json`), JSON.stringify(eventNumber(2)));
  assert.equal((await runBundle(['flush', ...args(server.url)])).code, 0);
  const sent = server.events() as { uuid: string; event: string; properties: Record<string, unknown> }[];
  assert.deepEqual(sent.map((event) => event.uuid).sort(), [uuidOf(1), uuidOf(2)], 'each once');
  const stop = sent.find((event) => event.uuid === uuidOf(1));
  assert.equal(stop?.properties.exit_code, 3, 'its own properties kept');
  assert.equal(stop?.properties.host_os_id, 'debian', 'and what was collected when it was finished');
  assert.equal('collect' in (stop ?? {}), false, 'nothing unfinished reaches the wire');
  assert.deepEqual(outboxFolders(state), { tmp: [], new: [], cur: [], corrupt: [] });
});
