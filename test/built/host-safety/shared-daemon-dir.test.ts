import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { makeRoot, tempDir, trapViolations } from '../../support/helpers.ts';
import { assertRefused, DEAD_ENDPOINT, MACHINE, picture, receiver, runHard, seedOutbox, statusJson } from '../../support/host-safety.ts';

/**
 * The tool touches no file it did not create (issue 14 item 1). A daemon's own state dir
 * (systemd's StateDirectory=, /var/lib/<product>) is not the tool's: nothing in it is read,
 * moved, deleted or written, whatever names it holds. And no name is ever taken from a file's
 * content: a queued event whose uuid is a path steers no rename.
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

test('a daemon\'s own state dir (queue/, state.json, notice-shown, distinct-id) is refused as a state dir and every file in it stays as it was', async (t) => {
  // As /var/lib/<product> looks to a root run: root's, 0700, full of the daemon's data.
  const daemon = path.join(tempDir(t), 'example-daemon');
  mkdirSync(path.join(daemon, 'queue'), { recursive: true, mode: 0o700 });
  const daemonEvent = { api_key: 'phc_daemon', event: 'metric', uuid: 'e0000000-0000-4000-8000-000000000001', timestamp: '2026-01-01T00:00:00.000Z', properties: { distinct_id: 'the-daemons-own' } };
  writeFileSync(path.join(daemon, 'queue', 'x.json'), JSON.stringify(daemonEvent), { mode: 0o600 });
  writeFileSync(path.join(daemon, 'queue', 'other.bin'), Buffer.from([0, 1, 2, 3, 255]), { mode: 0o600 });
  writeFileSync(path.join(daemon, 'state.json'), '{"daemon":"its own state","version":7}\n', { mode: 0o600 });
  writeFileSync(path.join(daemon, 'notice-shown'), '', { mode: 0o600 });
  writeFileSync(path.join(daemon, 'distinct-id'), 'the-daemons-own-id\n', { mode: 0o600 });
  const before = picture(daemon);

  const server = await receiver(t, () => 200);
  const args = ['--state-dir', daemon, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)];
  const env = { TMPDIR: tempDir(t) };
  const runs = [
    ['start', '--show-notice'],
    ['fatal', '--process', 'd', '--thread', 't'],
    ['stop', '--background'],
    ['flush'],
    ['history', '--json'],
    ['disable', '--config-dir', tempDir(t)],
    ['enable', '--config-dir', tempDir(t)],
  ];
  for (const command of runs) {
    const run = await runHard([...command, ...args], { env });
    assert.equal(run.killed, false, `${command[0]} ended`);
    assert.deepEqual(picture(daemon), before, `after ${command.join(' ')}: nothing in the daemon's dir was read-and-moved, deleted, added or rewritten`);
  }
  assert.ok(!server.requests.some((request) => request.uuids.includes(daemonEvent.uuid)), 'the daemon\'s queued file was never sent as ours');
  const status = await statusJson(args, env);
  assertRefused(status, daemon);
  assert.deepEqual(picture(daemon), before, 'status left it as it was too');
});

test('a queued file whose uuid is a path (/../../../../x) makes root rename or create nothing outside the outbox', async (t) => {
  const base = tempDir(t);
  const state = path.join(base, 'state');
  const root = makeRoot(t, MACHINE);
  await seedOutbox(t, state, root, 1);
  // Where `<outbox>/new/<ms>-/../../../../x.json` resolves: beside the state dir.
  const sentinel = path.join(base, 'x.json');
  writeFileSync(sentinel, '{"precious":true}\n');
  const hostile = (n: number) => ({ api_key: 'phc_test', event: 'start', uuid: '/../../../../x', timestamp: `2026-01-01T00:00:0${n}.000Z`, properties: { distinct_id: 'planted' } });
  // Planted where the outbox keeps waiting events, under a name of the outbox's own pattern...
  writeFileSync(path.join(state, 'outbox', 'new', '1767225601000-f0000000-0000-4000-8000-000000000001.json'), JSON.stringify(hostile(1)), { mode: 0o600 });
  // ...and where the 0.1 layout kept them (queue/), which a run took over by the uuid inside.
  mkdirSync(path.join(state, 'queue'), { mode: 0o700 });
  writeFileSync(path.join(state, 'queue', '20260101000002000-f0000000-0000-4000-8000-000000000002.json'), JSON.stringify(hostile(2)), { mode: 0o600 });
  const outside = () => Object.fromEntries(Object.entries(picture(base)).filter(([name]) => name !== 'state' && !name.startsWith(`state${path.sep}`)));
  const before = outside();

  const server = await receiver(t, () => 200);
  for (const command of [['flush'], ['start'], ['flush']]) {
    const run = await runHard([...command, '--state-dir', state, '--endpoint', command[0] === 'start' ? DEAD_ENDPOINT : server.url, '--root', root]);
    assert.equal(run.killed, false, `${command[0]} ended`);
    assert.deepEqual(outside(), before, `after ${command[0]}: ${sentinel} is untouched and nothing new appeared beside the state dir`);
  }
});
