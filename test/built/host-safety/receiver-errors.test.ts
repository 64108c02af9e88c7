import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { makeRoot, tempDir, trapViolations } from '../../support/helpers.ts';
import { MACHINE, receiver, runHard, seedOutbox, statusJson } from '../../support/host-safety.ts';

/**
 * A receiver's configuration error is not the events' fault (issue 14 item 3): a key rotation
 * (401, 403), a misrouted load balancer (404, 405, 410), a receiver without /batch/, or one that
 * refuses every request keeps every event queued, backs off, and says why. An event is dropped
 * only when the receiver refuses that event alone.
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

const CONFIGURATION_ERRORS = [401, 403, 404, 405, 410];

function setup(t: TestContext) {
  const state = path.join(tempDir(t), 'state');
  const root = makeRoot(t, MACHINE);
  return { state, root, args: (url: string) => ['--state-dir', state, '--endpoint', url, '--root', root] };
}

async function queuedEvents(args: string[]): Promise<number> {
  return (await statusJson(args)).queued_events;
}

async function historyText(args: string[]): Promise<string> {
  const run = await runHard(['history', '--json', ...args]);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout;
}

for (const status of CONFIGURATION_ERRORS) {
  test(`a new event answered ${status} on /capture/ stays queued, and history says ${status}`, async (t) => {
    const { args } = setup(t);
    const server = await receiver(t, () => status);
    const run = await runHard(['start', ...args(server.url)]);
    assert.deepEqual([run.killed, run.code], [false, 0], run.stderr);
    assert.equal(server.requests[0]?.path, '/capture/', 'it was tried');
    assert.equal(await queuedEvents(args(server.url)), 1, 'the event waits for the receiver to be fixed');
    assert.match(await historyText(args(server.url)), new RegExp(String(status)));
  });

  test(`a flush of 200 events answered ${status} on /batch/ keeps all 200, backs off, and history says ${status}`, async (t) => {
    const { state, root, args } = setup(t);
    await seedOutbox(t, state, root, 200);
    const server = await receiver(t, () => status);
    const flushed = await runHard(['flush', '--timeout', '10000', ...args(server.url)], { killAfterMs: 20_000 });
    assert.equal(flushed.killed, false);
    assert.ok(server.requests.length > 0, 'the receiver was tried');
    assert.equal(await queuedEvents(args(server.url)), 200, `a ${status} cost no event`);
    assert.match(await historyText(args(server.url)), new RegExp(String(status)));
    const tried = server.requests.length;
    const stop = await runHard(['stop', ...args(server.url)]);
    assert.deepEqual([stop.killed, stop.code], [false, 0], stop.stderr);
    assert.equal(server.requests.length, tried, 'the next event run backs off instead of trying again at once');
    assert.equal(await queuedEvents(args(server.url)), 201);
  });
}

test('a receiver whose /batch/ answers 404 but whose /capture/ works gets all 200 events one by one during flush', async (t) => {
  const { state, root, args } = setup(t);
  const uuids = await seedOutbox(t, state, root, 200);
  const server = await receiver(t, (pathname) => (pathname === '/batch/' ? 404 : 200));
  const flushed = await runHard(['flush', '--timeout', '20000', ...args(server.url)], { killAfterMs: 30_000 });
  assert.deepEqual([flushed.killed, flushed.code], [false, 0], flushed.stderr);
  assert.deepEqual([...server.accepted()].sort(), [...uuids].sort(), 'every event arrived');
  assert.ok(server.requests.filter((r) => r.status === 200).every((r) => r.path === '/capture/' && r.uuids.length === 1), 'one by one on the capture path');
  assert.equal(await queuedEvents(args(server.url)), 0);
});

test('a receiver that answers 400 to every request keeps all 200 events; once it refuses one event alone, only that one is dropped', async (t) => {
  const { state, root, args } = setup(t);
  const uuids = await seedOutbox(t, state, root, 200);
  const refused = uuids[77];
  let refuseEverything = true;
  const server = await receiver(t, (_pathname, sent) => (refuseEverything || sent.includes(refused) ? 400 : 200));
  await runHard(['flush', '--timeout', '10000', ...args(server.url)], { killAfterMs: 20_000 });
  assert.equal(await queuedEvents(args(server.url)), 200, 'a receiver that refuses everything refuses no event in particular');

  refuseEverything = false;
  const flushed = await runHard(['flush', '--timeout', '20000', ...args(server.url)], { killAfterMs: 30_000 });
  assert.equal(flushed.killed, false);
  assert.deepEqual([...server.accepted()].sort(), uuids.filter((uuid) => uuid !== refused).sort(), 'the other 199 arrived');
  assert.equal(await queuedEvents(args(server.url)), 0, 'the one it refused alone was dropped');
});
