import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, ftruncateSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { BACKOFF_MAX_MS } from '../../src/after-consent/store/state.ts';
import { main } from '../../src/before-consent/run.ts';
import { store, type OutboxEvent } from '../../src/after-consent/store/outbox.ts';
import { TAG_FILE } from '../../src/after-consent/store/state-dir.ts';
import { endpoint, fakeContext, listTree, openTestStore, makeRoot, outboxFolders, runBundle, runBundleUnder, tempDir, trapViolations, unlessRoot, waitingEvents } from '../support/helpers.ts';

/**
 * What the store and the sender withstand: each case here broke when it was tried on 0.1. A
 * state dir someone else could have planted is never used; a planted or stale file can neither
 * stall, steer nor impersonate; a write cut short is never taken for a stored event; and no
 * answer of the receiver costs an event it could still take.
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

const NOBODY = 65534;
const MACHINE = { 'etc/machine-id': '00112233445566778899aabbccddeeff\n', 'etc/os-release': 'ID=debian\n' };
/** The budget counts from the child's start; this covers spawning it on a loaded machine. */
const SLACK_MS = 1000;

/** Everything below `dir`, directories included: proves nothing at all was created in it. */
function everything(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

/** Each entry below `dir` with what it holds (a directory as '/'): proves nothing changed. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(everything(dir).map((name) => [name, lstatSync(path.join(dir, name)).isDirectory() ? '/' : readFileSync(path.join(dir, name), 'utf8')]));
}

/** In-process runs at a given time; uuids stay unique across them (each fakeContext counts from 1). */
let uuids = 0;
function at(ms: number) {
  return fakeContext({ now: () => new Date(ms), uuid: () => `d0000000-0000-4000-8000-${String(++uuids).padStart(12, '0')}` });
}

function stateOf(state: string): Record<string, any> {
  return JSON.parse(readFileSync(path.join(state, 'state.json'), 'utf8'));
}

function historyOf(state: string): { event: string; outcome: string; reason: string }[] {
  return existsSync(path.join(state, 'history.jsonl')) ? readFileSync(path.join(state, 'history.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line)) : [];
}

function uuidOf(i: number): string {
  return `b0000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
}

function eventNumber(i: number, properties: Record<string, unknown> = { distinct_id: 'planted-test-id' }): OutboxEvent {
  return { api_key: 'phc_test', event: 'start', uuid: uuidOf(i), timestamp: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), properties };
}

/** The state dir's files but the crash-loop slots (limits/): what a run stored. */
function withoutSlots(state: string): string[] {
  return listTree(state).filter((file) => !file.startsWith('limits/'));
}

function plant(state: string, events: OutboxEvent[]): void {
  mkdirSync(state, { recursive: true, mode: 0o700 });
  const { outbox } = openTestStore(state);
  for (const event of events) store(outbox, event);
}

test('a state dir owned by another user is left untouched (not even outbox/ is made): the run uses a dir of its own, and status says why', { skip: unlessRoot('chown to another user') }, async (t) => {
  const base = tempDir(t);
  const foreign = path.join(base, 'foreign');
  mkdirSync(foreign, { mode: 0o700 });
  chownSync(foreign, NOBODY, NOBODY);
  // Root takes no fallback under $HOME or $XDG_STATE_HOME (often another user's under sudo): the temp dir's.
  const xdg = path.join(base, 'xdg');
  const tmp = path.join(base, 'tmp');
  mkdirSync(tmp, { mode: 0o755 });
  const server = await endpoint(t);
  const args = ['--state-dir', foreign, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)];
  const env = { XDG_STATE_HOME: xdg, TMPDIR: tmp };
  const result = await runBundle(['start', ...args], env);
  assert.deepEqual([result.code, result.stderr], [0, '']);
  assert.deepEqual(everything(foreign), []);
  assert.equal(server.events().length, 1, 'sent, with the crash-loop limit kept in the fallback');
  assert.ok(!existsSync(xdg), 'nothing under $XDG_STATE_HOME');
  assert.ok(existsSync(path.join(tmp, 'example-daemon-0', 'state.json')));
  const status = await runBundle(['status', ...args], env);
  assert.match(status.stdout, new RegExp(`state dir ${foreign} is unusable: it is owned by uid ${NOBODY}, not by the user running this \\(uid 0\\)`));
  assert.match(status.stdout, new RegExp(`state dir: ${path.join(tmp, 'example-daemon-0')} \\(0 events queued\\)`));
  assert.deepEqual(everything(foreign), [], 'status created nothing either');
});

test('a service user whose state dir root made (0700, root-owned) creates nothing in it, keeps its limits in a dir of its own, and status says why', { skip: unlessRoot('setpriv to another user') }, async (t) => {
  const base = tempDir(t);
  chmodSync(base, 0o755);
  const rootsDir = path.join(base, 'var-lib');
  mkdirSync(rootsDir, { mode: 0o700 });
  const xdg = path.join(base, 'xdg');
  mkdirSync(xdg, { mode: 0o700 });
  chownSync(xdg, NOBODY, NOBODY);
  const root = makeRoot(t, MACHINE);
  chmodSync(root, 0o755);
  const server = await endpoint(t);
  const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
  const args = ['--state-dir', rootsDir, '--endpoint', server.url, '--root', root];
  const env = { XDG_STATE_HOME: xdg, TMPDIR: xdg };
  for (let i = 0; i < 12; i++) {
    const result = await runBundleUnder(asNobody, ['fatal', '--process', 'd', '--thread', 't', ...args], env);
    assert.deepEqual([result.code, result.stderr], [0, '']);
  }
  assert.deepEqual(everything(rootsDir), []);
  assert.equal(server.events().length, 10, 'the crash-loop limit held without the configured dir');
  const status = await runBundleUnder(asNobody, ['status', ...args], env);
  assert.match(status.stdout, new RegExp(`state dir ${rootsDir} is unusable: it is owned by uid 0, not by the user running this \\(uid ${NOBODY}\\)`));
});

test('unreadable state files (mode 000) and a state dir that cannot be listed (0300) change neither the exit code nor the output, and the event still goes', { skip: unlessRoot('setpriv to another user') }, async (t) => {
  const base = tempDir(t);
  chmodSync(base, 0o755);
  const state = path.join(base, 'state');
  mkdirSync(state, { mode: 0o700 });
  chownSync(state, NOBODY, NOBODY);
  const root = makeRoot(t, MACHINE);
  chmodSync(root, 0o755);
  const server = await endpoint(t);
  const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
  const args = ['--state-dir', state, '--endpoint', server.url, '--root', root];
  assert.equal((await runBundleUnder(asNobody, ['start', ...args])).code, 0);
  for (const file of ['state.json', 'history.jsonl']) chmodSync(path.join(state, file), 0);
  chmodSync(state, 0o300);
  for (const command of [['stop'], ['stop', '--background'], ['fatal', '--process', 'p', '--thread', 't', '--message', 'm']]) {
    const result = await runBundleUnder(asNobody, [...command, ...args]);
    assert.deepEqual([result.code, result.stdout, result.stderr], [0, '', ''], command.join(' '));
  }
  const flushed = await runBundleUnder(asNobody, ['flush', ...args]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.deepEqual(server.events().map((e) => e.event).sort(), ['fatal', 'start', 'stop', 'stop']);
});

test('a state dir that is a symlink is never followed, not even by mkdir; status names it', async (t) => {
  const base = tempDir(t);
  const target = path.join(base, 'elsewhere');
  mkdirSync(target);
  const linked = path.join(base, 'linked');
  symlinkSync(target, linked);
  const dangling = path.join(base, 'dangling');
  symlinkSync(path.join(base, 'not-yet'), dangling);
  const xdg = path.join(base, 'xdg');
  const server = await endpoint(t);
  for (const state of [linked, dangling]) {
    const args = ['--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)];
    const result = await runBundle(['start', ...args], { XDG_STATE_HOME: xdg });
    assert.deepEqual([result.code, result.stderr], [0, '']);
    const status = await runBundle(['status', ...args], { XDG_STATE_HOME: xdg });
    assert.match(status.stdout, new RegExp(`state dir ${state} is unusable: it is a symlink`));
  }
  assert.deepEqual(everything(target), []);
  assert.equal(existsSync(path.join(base, 'not-yet')), false, 'the dangling link was not created through');
  assert.equal(server.events().length, 2);
});

for (const mode of [0o777, 0o1777]) {
  test(`a shared dir (mode ${mode.toString(8)}) with a state file, an outbox item and a claim planted in it is not used: they neither stall, steer nor impersonate`, async (t) => {
    const base = tempDir(t);
    const shared = path.join(base, 'shared');
    const server = await endpoint(t);
    const planted = 'c0ffee00-0000-4000-8000-000000000001';
    const far = Date.UTC(3000, 0, 1);
    mkdirSync(path.join(shared, 'outbox', 'new'), { recursive: true });
    mkdirSync(path.join(shared, 'outbox', 'cur'), { recursive: true });
    writeFileSync(
      path.join(shared, 'state.json'),
      JSON.stringify({ distinctId: planted, noticeShown: 'x', dropped: 0, suppressed: 0, windows: { start: { start: Date.now(), count: 1e6 } }, backoff: { [`${server.url}/`]: { failures: 60, next: far } }, executions: {} }),
    );
    const impostor = eventNumber(1, { distinct_id: planted, product: 'example-daemon' });
    writeFileSync(path.join(shared, 'outbox', 'new', `1767225601000-${impostor.uuid}.json`), JSON.stringify({ ...impostor, event: 'fatal' }));
    writeFileSync(path.join(shared, 'outbox', 'cur', `1767225602000-${uuidOf(2)}.json.${process.pid}-${Date.now()}`), JSON.stringify(eventNumber(2)));
    chmodSync(shared, mode);
    const before = snapshot(shared);
    const xdg = path.join(base, 'xdg');
    const args = ['--state-dir', shared, '--endpoint', server.url, '--root', makeRoot(t, { 'etc/os-release': 'ID=debian\n' })];
    const result = await runBundle(['start', ...args], { XDG_STATE_HOME: xdg });
    assert.deepEqual([result.code, result.stderr], [0, '']);
    assert.deepEqual(server.events().map((e) => e.event), ['start'], 'sent at once, and only the real event');
    assert.notEqual((server.events()[0].properties as Record<string, unknown>).distinct_id, planted);
    assert.deepEqual(snapshot(shared), before, 'nothing in the shared dir was taken, changed or added');
    const status = await runBundle(['status', ...args], { XDG_STATE_HOME: xdg });
    assert.match(status.stdout, new RegExp(`state dir ${shared} is unusable: it is writable by others \\(mode ${(mode & 0o777).toString(8)}\\)`));
  });
}

test('state files of ours replaced by a symlink or a FIFO are neither followed nor waited on', async (t) => {
  const base = tempDir(t);
  const state = path.join(base, 'state');
  mkdirSync(state, { mode: 0o700 });
  writeFileSync(path.join(state, TAG_FILE), '');
  const victim = path.join(base, 'victim');
  writeFileSync(victim, 'precious\n');
  symlinkSync(victim, path.join(state, 'state.json'));
  execFileSync('mkfifo', [path.join(state, 'history.jsonl')]);
  const server = await endpoint(t);
  const args = ['--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE), '--timeout', '1000'];
  const result = await runBundle(['start', ...args]);
  assert.deepEqual([result.code, result.stderr], [0, '']);
  assert.ok(result.ms < 1000 + SLACK_MS, `took ${Math.round(result.ms)} ms`);
  assert.equal(server.events().length, 1);
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n', 'not written through the link');
  assert.ok(stateOf(state).run, 'the state file is a file of ours again');
  const history = await runBundle(['history', '--state-dir', state]);
  assert.deepEqual([history.code, history.stdout], [0, 'no events recorded yet\n'], 'the FIFO ledger is not read');
});

test('a --log-file that is a FIFO nobody reads never holds the run', async (t) => {
  const base = tempDir(t);
  const log = path.join(base, 'log.fifo');
  execFileSync('mkfifo', [log]);
  const server = await endpoint(t);
  const result = await runBundle(['start', '--log-file', log, '--timeout', '1000', '--state-dir', path.join(base, 'state'), '--endpoint', server.url, '--root', makeRoot(t, MACHINE)]);
  assert.deepEqual([result.code, result.stderr], [0, '']);
  assert.ok(result.ms < 1000 + SLACK_MS, `took ${Math.round(result.ms)} ms`);
  assert.equal(server.events().length, 1);
});

test('a clock that was once far ahead never makes a wait longer than the back-off ceiling from now', async (t) => {
  const state = path.join(tempDir(t), 'state');
  const root = makeRoot(t, MACHINE);
  const server = await endpoint(t, { kind: 'status', status: 503 });
  const args = ['--endpoint', server.url, '--state-dir', state, '--root', root];
  const future = Date.UTC(2999, 0, 1);
  // A crash loop while the clock said 2999: the limit's window and the back-off are dated then.
  for (let i = 0; i < 10; i++) await main(['start', ...args], at(future + i));
  assert.ok(stateOf(state).backoff[`${server.url}/`].next > future);
  server.setBehavior({ kind: 'accept' });
  const now = Date.UTC(2026, 5, 1);
  await main(['start', ...args], at(now));
  const latest = historyOf(state).at(-1);
  assert.notEqual(latest?.outcome, 'suppressed', 'a window from the future does not count against now');
  const next = stateOf(state).backoff[`${server.url}/`]?.next;
  assert.ok(next === undefined || next <= now + BACKOFF_MAX_MS, `next attempt at ${next}`);
  await main(['stop', ...args], at(now + BACKOFF_MAX_MS));
  assert.deepEqual(waitingEvents(state), [], "everything went out by the ceiling");
  assert.equal(server.events().filter((e) => e.event === 'start').length, 11);
});

for (const retryAfter of ['999999999', 'Fri, 01 Jan 3000 00:00:00 GMT']) {
  test(`a Retry-After of ${retryAfter} waits the back-off ceiling at most`, async (t) => {
    const state = path.join(tempDir(t), 'state');
    const server = await endpoint(t, { kind: 'status', status: 503, headers: { 'retry-after': retryAfter } });
    const now = Date.UTC(2026, 5, 1);
    await main(['start', '--endpoint', server.url, '--state-dir', state, '--root', makeRoot(t, MACHINE)], at(now));
    assert.equal(waitingEvents(state).length, 1);
    assert.ok(stateOf(state).backoff[`${server.url}/`].next <= now + BACKOFF_MAX_MS);
  });
}

test('a claim dated far in the future is taken back even though its pid is alive; a live, current claim is left to its sender', async (t) => {
  const state = path.join(tempDir(t), 'state');
  const root = makeRoot(t, MACHINE);
  plant(state, []);
  const cur = path.join(state, 'outbox', 'cur');
  // This test's own pid: alive for the whole test.
  const claim = (i: number, at: number) => writeFileSync(path.join(cur, `${String(Date.UTC(2026, 0, 1) + i * 1000).padStart(13, '0')}-${uuidOf(i)}.json.${process.pid}-${at}`), JSON.stringify(eventNumber(i)), { mode: 0o600 });
  claim(1, Date.UTC(3000, 0, 1));
  claim(2, Date.now());
  const stray = path.join(state, 'outbox', 'tmp', `${String(Date.UTC(2026, 0, 1)).padStart(13, '0')}-${uuidOf(9)}.json.${process.pid}.halfwritten`);
  writeFileSync(stray, '{"api');
  const far = new Date(Date.UTC(3000, 0, 1));
  utimesSync(stray, far, far);
  const server = await endpoint(t);
  const flushed = await runBundle(['flush', '--endpoint', server.url, '--state-dir', state, '--root', root]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.deepEqual(server.events().map((e) => e.uuid), [uuidOf(1)]);
  assert.equal(outboxFolders(state).cur.length, 1, 'the current claim stays with its sender');
  assert.deepEqual(outboxFolders(state).tmp, [], 'a temp file dated in the future is not kept forever');
});

test('flush says what it did: exit 0 and "0 still queued" when all went; exit 1 and how many stay when the receiver hangs', async (t) => {
  const state = path.join(tempDir(t), 'state');
  const root = makeRoot(t, MACHINE);
  plant(state, [eventNumber(1), eventNumber(2)]);
  const server = await endpoint(t, { kind: 'hang' });
  const args = ['--endpoint', server.url, '--state-dir', state, '--root', root];
  const hung = await runBundle(['flush', '--timeout', '1000', ...args]);
  assert.equal(hung.code, 1, 'not sent, so not a success');
  assert.match(hung.stderr, /2 events still queued/);
  assert.equal(waitingEvents(state).length, 2);
  server.setBehavior({ kind: 'accept' });
  const sent = await runBundle(['flush', ...args]);
  assert.deepEqual([sent.code, sent.stdout], [0, 'sent 2 queued events, dropped 0 the receiver refused; 0 still queued\n']);
});

/** One page of tmpfs; every file takes whole pages. */
const PAGE = 4096;

/** A 16 KB tmpfs of this test's own (mode 0700, so it may be a state dir), unmounted afterwards. */
function smallDisk(t: TestContext): { base: string; disk: string } {
  const base = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-disk-'));
  const disk = path.join(base, 'disk');
  mkdirSync(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k,mode=0700', 'tmpfs', disk]);
  t.after(() => {
    execFileSync('umount', [disk]);
    rmSync(base, { recursive: true, force: true });
  });
  return { base, disk };
}

/** Fills `disk` to the last byte; `release(bytes)` gives some of it back. */
function fill(disk: string): { release: (bytes: number) => void } {
  const fd = openSync(path.join(disk, 'filler'), 'w');
  const chunk = Buffer.alloc(PAGE, 'f');
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  return {
    release: (bytes) => {
      ftruncateSync(fd, fstatSync(fd).size - bytes);
      closeSync(fd);
    },
  };
}

/** A fatal of several pages: every free-text field at its 1,000-character cap. */
const BIG_FATAL = ['fatal', ...['--process', '--thread', '--function', '--file', '--message'].flatMap((option) => [option, 'w'.repeat(2000)])];

test('on a full disk nothing is stored, nothing torn is renamed into place, nothing is called queued, and the exit code stays 0', { skip: unlessRoot('mounting a tmpfs') }, async (t) => {
  const { base, disk } = smallDisk(t);
  const state = path.join(disk, 'state');
  const log = path.join(base, 'sent.log');
  const server = await endpoint(t);
  const args = ['--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE), '--log-file', log];
  assert.equal((await runBundle(['start', ...args])).code, 0);
  const stateBefore = readFileSync(path.join(state, 'state.json'), 'utf8');
  const { release } = fill(disk);

  for (const command of [['stop'], ['stop', '--background'], BIG_FATAL]) {
    const result = await runBundle([...command, ...args]);
    assert.deepEqual([result.code, result.stderr], [0, ''], command.join(' '));
  }
  assert.equal(readFileSync(path.join(state, 'state.json'), 'utf8'), stateBefore, 'the state file is whole, as before');
  assert.deepEqual(withoutSlots(state), [TAG_FILE, 'history.jsonl', 'state.json'], 'no event, temp file or torn copy anywhere');

  // Room for the state file, not for a 7 KB event: the limit holds, the event is dropped, and the ledger says so.
  release(PAGE);
  const result = await runBundle([...BIG_FATAL, ...args]);
  assert.deepEqual([result.code, result.stderr], [0, '']);
  assert.equal(listTree(state).filter((file) => file.startsWith('limits/fatal.')).length, 2, 'each fatal took its crash-loop slot, stored or not');
  assert.deepEqual(withoutSlots(state), [TAG_FILE, 'history.jsonl', 'state.json']);
  const [first, ...rest] = historyOf(state);
  assert.deepEqual([first.event, first.outcome], ['start', 'sent']);
  assert.deepEqual([...new Set(rest.map((entry) => entry.outcome))], ['dropped'], 'whatever the ledger could record says dropped, never queued');
  assert.match(rest.at(-1)?.reason ?? '', /could not be stored \(ENOSPC\)/);
  assert.equal(server.events().length, 1, 'decided once: what cannot be stored is not sent');
  assert.ok(!readFileSync(log, 'utf8').includes('"queued"'), 'the log calls nothing queued');
});

test('writes cut short by a file-size limit (RLIMIT_FSIZE; Node ignores SIGXFSZ) are never renamed into place, nor called queued', async (t) => {
  const state = path.join(tempDir(t), 'state');
  const server = await endpoint(t);
  const args = ['--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)];
  assert.equal((await runBundle(['start', ...args])).code, 0);
  // The state file (~400 bytes) fits under the limit; an event (over 2 KB) does not.
  const limited = ['prlimit', '--fsize=1024'];
  const fatal = ['fatal', '--process', 'p', '--thread', 't', '--message', 'm'.repeat(1000)];
  for (const command of [fatal, [...fatal, '--background']]) {
    const result = await runBundleUnder(limited, [...command, ...args]);
    assert.deepEqual([result.code, result.stderr], [0, ''], command.join(' '));
  }
  assert.deepEqual(withoutSlots(state), [TAG_FILE, 'history.jsonl', 'state.json'], 'no event, temp file or torn copy anywhere');
  assert.deepEqual(historyOf(state).map((entry) => `${entry.event} ${entry.outcome}`), ['start sent', 'fatal dropped', 'fatal dropped']);
  for (const entry of historyOf(state).slice(1)) assert.match(entry.reason, /could not be stored \(EFBIG\)/);
  assert.equal(server.events().length, 1);
  const status = await runBundle(['status', ...args]);
  assert.match(status.stdout, /\(0 events queued\)/);
});

test('a redirect is not a delivery: the event stays queued, flush exits 1, and it goes once the receiver answers', async (t) => {
  const state = path.join(tempDir(t), 'state');
  const elsewhere = await endpoint(t);
  const server = await endpoint(t, { kind: 'status', status: 302, headers: { location: `${elsewhere.url}/capture/` } });
  const args = ['--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)];
  assert.equal((await runBundle(['start', '--timeout', '800', ...args])).code, 0);
  assert.equal(waitingEvents(state).length, 1);
  const flushed = await runBundle(['flush', '--timeout', '800', ...args]);
  assert.equal(flushed.code, 1);
  assert.match(flushed.stderr, /1 event still queued: HTTP 302/);
  assert.equal(elsewhere.requests.length, 0, 'the redirect was not followed');
  server.setBehavior({ kind: 'accept' });
  assert.equal((await runBundle(['flush', ...args])).code, 0);
  assert.equal(server.events().length, 1);
  assert.deepEqual(waitingEvents(state), []);
});

test('a 413 to a big batch costs nothing: the batch is split until the receiver takes every event, each once', async (t) => {
  const state = path.join(tempDir(t), 'state');
  const blob = 'x'.repeat(2000);
  const events = Array.from({ length: 40 }, (_, i) => eventNumber(i + 1, { distinct_id: 'planted-test-id', blob }));
  plant(state, events);
  // Room for about five of these events in one request.
  const server = await endpoint(t, { kind: 'max-body', bytes: 5 * 2300 });
  const flushed = await runBundle(['flush', '--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, /sent 40 queued events, dropped 0/);
  assert.ok(server.requests.some((r) => r.status === 413), 'the receiver did refuse the big batch');
  assert.deepEqual(server.events().map((e) => e.uuid).sort(), events.map((e) => e.uuid));
});

test('one malformed event in a batch (PostHog refuses the whole request) costs only itself: every good one is delivered, once', async (t) => {
  const state = path.join(tempDir(t), 'state');
  const good = Array.from({ length: 9 }, (_, i) => eventNumber(i + 1));
  // Whole JSON of the right shape, but without the distinct_id PostHog requires.
  const malformed = eventNumber(5, { product: 'example-daemon' });
  malformed.uuid = uuidOf(100);
  plant(state, [...good.slice(0, 4), malformed, ...good.slice(4)]);
  const server = await endpoint(t);
  const flushed = await runBundle(['flush', '--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)]);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.match(flushed.stdout, /sent 9 queued events, dropped 1 the receiver refused; 0 still queued/);
  assert.equal(server.requests[0].status, 400, 'the first batch was refused whole');
  assert.deepEqual(server.events().map((e) => e.uuid).sort(), good.map((e) => e.uuid));
  assert.deepEqual(historyOf(state).filter((entry) => entry.outcome === 'dropped').length, 1);
});

test('values read from system files are capped: a 1 MB os-release NAME and kernel release arrive cut to 1,000 characters', async (t) => {
  const name = 'N'.repeat(1_000_000);
  const root = makeRoot(t, { ...MACHINE, 'etc/os-release': `NAME="${name}"\nID=debian\nVERSION_ID="12"\n`, 'proc/sys/kernel/ostype': 'Linux\n', 'proc/sys/kernel/osrelease': `${'6'.repeat(1_000_000)}\n` });
  const server = await endpoint(t);
  const result = await runBundle(['start', '--timeout', '2000', '--state-dir', path.join(tempDir(t), 'state'), '--endpoint', server.url, '--root', root]);
  assert.deepEqual([result.code, result.stderr], [0, '']);
  const properties = server.events()[0].properties as Record<string, string>;
  assert.equal(properties.host_os_name, name.slice(0, 1000));
  assert.equal(properties.system_kernel_version, '6'.repeat(1000));
  assert.deepEqual([properties.host_os_id, properties.host_os_version_id], ['debian', '12'], 'the lines after it are still read');
});

test('a huge host or user name (1 MB /etc/hostname, passwd entry, $USER) neither breaks nor stalls the scrubber', async (t) => {
  const huge = 'h'.repeat(1_000_000);
  const root = makeRoot(t, {
    ...MACHINE,
    'etc/hostname': `${huge}\n`,
    'etc/passwd': `root:x:0:0::/root:/bin/sh\n${huge}:x:1000:1000::/home/x:/bin/sh\nkarolina:x:1001:1001::/home/karolina:/bin/sh\n`,
  });
  const server = await endpoint(t);
  const result = await runBundle(
    ['fatal', '--process', 'd', '--thread', 't', '--message', `failed for karolina near ${'h'.repeat(5000)}`, '--timeout', '2000', '--state-dir', path.join(tempDir(t), 'state'), '--endpoint', server.url, '--root', root],
    { USER: 'u'.repeat(100_000) },
  );
  assert.deepEqual([result.code, result.stderr], [0, '']);
  assert.ok(result.ms < 2000 + SLACK_MS, `took ${Math.round(result.ms)} ms`);
  const message = (server.events()[0].properties as Record<string, string>).fatal_message;
  assert.ok(message.startsWith('failed for <user> near hhh'), message.slice(0, 40));
  assert.equal(message.length, 1000);
});
