import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HISTORY_KEEP, readHistory, recordHistory } from '../../src/after-consent/store/history.ts';
import { main } from '../../src/before-consent/run.ts';
import { endpoint, fakeContext, listTree, makeRoot, openTestStore, runBundle, tempDir } from '../support/helpers.ts';

/** Consent and transparency: what users can check before and after anything is sent. */

const MACHINE = { 'etc/machine-id': '00112233445566778899aabbccddeeff\n', 'etc/os-release': 'ID=debian\n' };

test('--dry-run, the wire and the transparency log carry the same bytes', async (t) => {
  const server = await endpoint(t);
  const root = makeRoot(t, MACHINE);
  const state = tempDir(t);
  const log = path.join(state, 'sent.log');
  const args = ['fatal', '--process', 'p', '--thread', 't', '--line', '9', '--root', root, '--state-dir', state, '--endpoint', server.url];
  const dry = fakeContext();
  assert.equal(await main([...args, '--dry-run'], dry), 0);
  assert.equal(await main([...args, '--log-file', log], fakeContext()), 0);
  const wire = server.requests[0].body;
  assert.equal(dry.out.join(''), `${wire}\n`, 'dry run shows what goes on the wire');
  assert.equal(readFileSync(log, 'utf8'), `${wire}\n`, 'the log holds what went on the wire');
});

test('a queued event is logged marked as queued, and logged again as sent when the queue goes out', async (t) => {
  const server = await endpoint(t, { kind: 'status', status: 503 });
  const state = tempDir(t);
  const log = path.join(state, 'sent.log');
  const args = ['--root', makeRoot(t, MACHINE), '--state-dir', state, '--endpoint', server.url, '--log-file', log];
  await main(['start', ...args], fakeContext());
  const [queuedLine] = readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(queuedLine.queued, true);
  assert.equal(queuedLine.reason, 'HTTP 503');
  assert.equal(queuedLine.payload.event, 'start');
  server.setBehavior({ kind: 'accept' });
  assert.equal(await main(['flush', ...args], fakeContext()), 0);
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(lines.length, 2);
  assert.deepEqual(JSON.parse(lines[1]), queuedLine.payload);
});

test('an unwritable log never costs the event', async (t) => {
  const server = await endpoint(t);
  const result = await runBundle(['start', '--endpoint', server.url, '--state-dir', tempDir(t), '--log-file', '/nonexistent/dir/sent.log', '--root', makeRoot(t, MACHINE)]);
  assert.deepEqual([result.code, result.stderr], [0, '']);
  assert.equal(server.events().length, 1);
});

test('history shows what was sent and what was kept, with the receiver\'s answer, as text and --json', async (t) => {
  const server = await endpoint(t, [{ kind: 'accept' }, { kind: 'status', status: 400 }, { kind: 'status', status: 500 }]);
  const state = tempDir(t);
  const args = ['--root', makeRoot(t, MACHINE), '--state-dir', state, '--endpoint', server.url];
  await main(['start', ...args], fakeContext());
  await main(['stop', ...args], fakeContext());
  await main(['install', '--result', 'success', ...args], fakeContext());
  const json = fakeContext();
  assert.equal(await main(['history', '--json', '--state-dir', state], json), 0);
  const entries = JSON.parse(json.out.join(''));
  assert.deepEqual(
    entries.map((e: Record<string, unknown>) => [e.event, e.outcome, e.status]),
    // A lone event refused (400) is kept: only a batch whose other events are taken shows the fault is in it.
    [['start', 'sent', 200], ['stop', 'queued', 400], ['install', 'queued', 500]],
  );
  assert.match(entries[2].reason, /HTTP 500/);
  const text = fakeContext();
  await main(['history', '--state-dir', state], text);
  assert.match(text.out.join(''), /^time\s+event\s+outcome\s+http\s+took\s+why\n.*start\s+sent\s+200/m);
});

test('the history stays small: only the newest entries are kept', (t) => {
  const state = tempDir(t);
  const { stateDir } = openTestStore(state);
  for (let i = 0; i < 1200; i++) recordHistory(stateDir, [{ time: `t${i}`, event: 'start', uuid: `u${i}`, outcome: 'sent', reason: 'delivered '.repeat(5) }]);
  const entries = readHistory(stateDir);
  assert.ok(entries.length <= HISTORY_KEEP);
  assert.equal(entries.at(-1)?.uuid, 'u1199');
  assert.ok(readFileSync(path.join(state, 'history.jsonl')).length <= 128 * 1024 + 200);
});

test('200 quick fatal calls from a crash loop send 10; the count of the rest rides on the next event', async (t) => {
  const server = await endpoint(t);
  const state = tempDir(t);
  const args = ['--root', makeRoot(t, MACHINE), '--state-dir', state, '--endpoint', server.url];
  for (let i = 0; i < 200; i++) assert.equal(await main(['fatal', '--process', 'd', '--thread', 't', ...args], fakeContext()), 0);
  assert.equal(server.events().length, 10);
  await main(['start', ...args], fakeContext());
  const start = server.events().at(-1) as { event: string; properties: Record<string, unknown> };
  assert.equal(start.event, 'start');
  assert.equal(start.properties.suppressed_events, 190);
  await main(['stop', ...args], fakeContext());
  assert.equal((server.events().at(-1) as { properties: Record<string, unknown> }).properties.suppressed_events, 0, 'counted once');
  const history = fakeContext();
  await main(['history', '--json', '--state-dir', state], history);
  assert.ok(JSON.parse(history.out.join('')).some((e: Record<string, string>) => e.outcome === 'suppressed' && /crash-loop limit/.test(e.reason)));
});

test('the crash-loop limit holds for the built file too (separate processes)', async (t) => {
  const server = await endpoint(t);
  const state = tempDir(t);
  const args = ['--root', makeRoot(t, MACHINE), '--state-dir', state, '--endpoint', server.url];
  for (let i = 0; i < 14; i++) assert.equal((await runBundle(['start', ...args])).code, 0);
  assert.equal(server.events().length, 10);
});

test('the first-run notice goes to a terminal once, on stderr only, never from a --background child; its run sends nothing', async (t) => {
  const server = await endpoint(t);
  const state = tempDir(t);
  const args = ['start', '--root', makeRoot(t, MACHINE), '--state-dir', state, '--endpoint', server.url];
  const child = fakeContext({ stderrIsTTY: () => true, backgroundChild: true });
  await main(args, child);
  assert.deepEqual(child.err, []);
  const first = fakeContext({ stderrIsTTY: () => true });
  await main(args, first);
  assert.match(first.err.join(''), /sends anonymous usage statistics.*\n.*Never host names.*\n.*DO_NOT_TRACK=1/);
  assert.deepEqual(first.out, []);
  assert.equal(server.requests.length, 0, 'the run that tells sends nothing');
  const second = fakeContext({ stderrIsTTY: () => true });
  await main(args, second);
  assert.deepEqual(second.err, []);
  assert.equal(server.events().length, 2, 'the next run sends its own event and the one that waited');
  const notTerminal = fakeContext({ stderrIsTTY: () => false });
  await main(['start', '--root', makeRoot(t, MACHINE), '--state-dir', tempDir(t), '--endpoint', server.url], notTerminal);
  assert.deepEqual(notTerminal.err, []);
});

test('status --json answers the real question: on or off, why, where, and what would be sent', async (t) => {
  const state = tempDir(t);
  const config = tempDir(t);
  const root = makeRoot(t, MACHINE);
  const ctx = fakeContext({ env: { DO_NOT_TRACK: '0' } });
  assert.equal(await main(['status', '--json', '--state-dir', state, '--config-dir', config, '--root', root, '--endpoint', 'https://eu.i.posthog.com', '--log-file', '/var/log/x.log'], ctx), 0);
  const status = JSON.parse(ctx.out.join(''));
  assert.equal(status.telemetry, 'off');
  assert.deepEqual(status.opt_outs.map((o: { mechanism: string }) => o.mechanism), ['DO_NOT_TRACK']);
  assert.match(status.opt_outs[0].detail, /even 0/);
  assert.equal(status.endpoint, 'https://eu.i.posthog.com/capture/');
  assert.match(status.machine_id, /etc\/machine-id \(only a keyed hash/);
  assert.equal(status.queued_events, 0);
  assert.equal(status.log_file, '/var/log/x.log');
  assert.equal(status.properties.host_os_id, 'debian');
  const dry = fakeContext();
  await main(['start', '--dry-run', '--state-dir', state, '--root', root], dry);
  // Before any event kept a salt, each look shows an id no event will carry: none is made for it.
  const { distinct_id: _shown, ...shown } = status.properties;
  const { distinct_id: _dry, ...dryRun } = JSON.parse(dry.out.join('')).properties;
  assert.deepEqual(shown, dryRun, 'exactly what a start would carry');
  assert.deepEqual(listTree(state), [], 'status and a dry run write nothing');
});

test('under CI events carry ci: true and the vendor name (ci-info, bundled)', async (t) => {
  const server = await endpoint(t);
  const args = ['start', '--endpoint', server.url, '--state-dir', tempDir(t), '--root', makeRoot(t, MACHINE)];
  await runBundle(args, { CI: 'true', GITHUB_ACTIONS: 'true' });
  await runBundle(args);
  const [inCi, notCi] = server.events().map((e) => e.properties as Record<string, unknown>);
  assert.deepEqual([inCi.ci, inCi.ci_name], [true, 'GitHub Actions']);
  assert.deepEqual([notCi.ci, notCi.ci_name], [false, 'none']);
});

test('free text is scrubbed before it is sent; ordinary words and source paths stay readable', async (t) => {
  const server = await endpoint(t);
  const root = makeRoot(t, { ...MACHINE, 'etc/hostname': 'build-box-17\n', 'etc/passwd': 'root:x:0:0::/root:/bin/sh\nkarolina:x:1000:1000::/home/karolina:/bin/sh\n' });
  const message = 'rrdengine.c: ECONNREFUSED to 10.20.30.40 from build-box-17 as karolina, see /home/karolina/.config/x and karolina@example.com';
  await main(['fatal', '--process', 'd', '--thread', 't', '--file', '/home/karolina/src/rrdengine.c', '--message', message, '--root', root, '--state-dir', tempDir(t), '--endpoint', server.url], fakeContext());
  const properties = server.events()[0].properties as Record<string, string>;
  assert.equal(properties.fatal_message, 'rrdengine.c: ECONNREFUSED to <ip> from <host> as <user>, see <path>/.config/x and <email>');
  assert.equal(properties.fatal_file, '<path>/src/rrdengine.c');
});

// The scrubber's own probes and properties are in scrub.test.ts.

test('scrubbing happens before the cut, so a secret across the length limit leaves no part behind', async (t) => {
  const server = await endpoint(t);
  // Cut first, this would leave " 10.20.30" at the end: three octets no address pattern matches.
  const message = `${'x'.repeat(990)} 10.20.30.40 and more`;
  await main(['fatal', '--process', 'd', '--thread', 't', '--message', message, '--root', makeRoot(t, MACHINE), '--state-dir', tempDir(t), '--endpoint', server.url], fakeContext());
  const sent = (server.events()[0].properties as Record<string, string>).fatal_message;
  assert.equal(sent.length, 1000);
  assert.ok(!sent.includes('10.20'), sent.slice(-20));
  assert.ok(sent.endsWith(' <ip> and '), sent.slice(-20));
});
