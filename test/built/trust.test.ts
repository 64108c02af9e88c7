import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import { build } from '../../scripts/build.ts';
import type { Endpoint } from '../../scripts/endpoint.ts';
import { captureSchema } from '../../src/after-consent/collect/properties.ts';
import { withNoticeShown } from '../../src/after-consent/store/state.ts';
import { updateState } from '../../src/after-consent/store/state-file.ts';
import { closeStore } from '../../src/after-consent/store/store.ts';
import { BUNDLE, endpoint, makeRoot, NODE_UNDER_TEST, openTestStore, PROJECT_DIR, runBuilt, runBundle, tempDir, TRAP_LOG, trapViolations, waitingEvents } from '../support/helpers.ts';

/**
 * CONTRACT.md "Telling the user, local-only mode, the schema, the id", with the built file as
 * users run it: the run that tells sends nothing (on a terminal, from an installer, and where a
 * vendor requires the notice), local-only mode records and never uploads (proved with strace),
 * and `disable` forgets the id.
 */

const TRAP = path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs');
const MACHINE_ID = { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'etc/machine-id': '0f1e2d3c4b5a69788796a5b4c3d2e1f0\n' };
const NOTICE = /sends anonymous usage statistics/;

let work: string;
/** A flavour whose vendor requires the notice before anything goes. */
let noticeRequired: string;

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-trust-'));
  const vendorFile = path.join(work, 'vendor.json');
  const vendor = JSON.parse(readFileSync(path.join(PROJECT_DIR, 'vendor.json'), 'utf8'));
  writeFileSync(vendorFile, JSON.stringify({ ...vendor, noticeRequired: true }));
  noticeRequired = await build({ vendorFile, outfile: path.join(work, 'required/anonymous-statistics.js') });
});
after(() => {
  rmSync(work, { recursive: true, force: true });
  assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address');
});

function dirs(t: TestContext, server: Endpoint | undefined, root = makeRoot(t, MACHINE_ID)) {
  const base = tempDir(t);
  const state = path.join(base, 'state');
  const config = path.join(base, 'config');
  const args = ['--state-dir', state, '--config-dir', config, '--root', root, '--endpoint', server?.url ?? 'http://127.0.0.1:9'];
  return { base, state, config, root, args };
}

async function ok(args: string[], file = BUNDLE, env: Record<string, string> = {}) {
  const result = await runBuilt(file, args, env);
  assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
  return result;
}

async function statusJson(args: string[], file = BUNDLE) {
  return JSON.parse((await ok(['status', '--json', ...args.filter((arg) => arg !== '--show-notice')], file)).stdout);
}

/** The built file on a pseudo-terminal (util-linux `script`), as a person runs it: what the terminal showed. */
function onTerminal(args: string[]): Promise<{ code: number; shown: string }> {
  const quoted = [NODE_UNDER_TEST, BUNDLE, ...args].map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: `--require ${TRAP}`, TRAP_LOG };
  return new Promise((resolve) => {
    execFile('script', ['-qefc', quoted, '/dev/null'], { env, timeout: 20000 }, (error, stdout) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, shown: stdout });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Told before anything leaves

test('on a terminal, the first run shows the notice and sends nothing; its event goes with the next run', async (t) => {
  const server = await endpoint(t);
  const { state, args } = dirs(t, server);
  const first = await onTerminal(['start', ...args]);
  assert.equal(first.code, 0, first.shown);
  assert.match(first.shown, NOTICE);
  assert.match(first.shown, /Nothing has been sent yet/);
  // The telling run started no sender, so once it returned nothing more can come from it.
  assert.equal(server.connections(), 0, 'the run that tells sends nothing, and opens no connection');
  const [held] = waitingEvents(state);
  assert.equal(held.event, 'start');
  const status = await statusJson(args);
  assert.equal(status.notice_shown, true);
  assert.match(status.notice_shown_at, /^\d{4}-\d\d-\d\dT/);
  assert.equal(status.notice_shown_version, status.notice_version);

  const second = await onTerminal(['stop', ...args]);
  assert.equal(second.code, 0, second.shown);
  assert.doesNotMatch(second.shown, NOTICE, 'told once per version');
  assert.deepEqual(server.events().map((e) => [e.event, e.uuid === held.uuid]).sort(), [['start', true], ['stop', false]]);
});

test('the installer path (--show-notice): the run that tells sends nothing, and a later run sends what it held', async (t) => {
  const server = await endpoint(t);
  const { state, args } = dirs(t, server);
  // --background as install.sh calls it: not even the detached sender starts in the telling run.
  const told = await ok(['install', '--result', 'success', '--background', '--show-notice', ...args]);
  assert.match(told.stderr, NOTICE);
  assert.equal(server.connections(), 0);
  assert.deepEqual(waitingEvents(state).map((e) => e.event), ['install']);
  const later = await ok(['start', '--show-notice', ...args]);
  assert.equal(later.stderr, '', 'shown once');
  assert.deepEqual(server.events().map((e) => e.event).sort(), ['install', 'start']);
  assert.deepEqual(waitingEvents(state), []);
});

test('a disable between the telling run and the next deletes what it held: none of it ever leaves', async (t) => {
  const server = await endpoint(t);
  const { state, args } = dirs(t, server);
  const told = await ok(['install', '--result', 'success', '--show-notice', ...args]);
  assert.match(told.stderr, NOTICE);
  const [held] = waitingEvents(state);
  const disable = await ok(['disable', ...args]);
  assert.match(disable.stdout, /deleted 1 queued event/);
  assert.deepEqual(waitingEvents(state), []);
  await ok(['start', ...args]);
  assert.equal(server.requests.length, 0, 'off is off');
  await ok(['enable', ...args]);
  await ok(['start', ...args]);
  assert.deepEqual(server.events().map((e) => e.event), ['start']);
  assert.ok(!server.requests.some((request) => request.body.includes(held.uuid)), 'the held event never left');
});

test('a notice of another version (a wider property set) is shown again, and that run sends nothing either', async (t) => {
  const server = await endpoint(t);
  const { state, args } = dirs(t, server);
  await ok(['start', ...args]);
  assert.equal(server.events().length, 1, 'no one could be told: it went as before');
  // The state as a build with a narrower property set left it: its notice, of its version.
  const opened = openTestStore(state);
  updateState(opened.stateDir, (s) => withNoticeShown(s, '2025-01-01T00:00:00.000Z', '0123456789ab'));
  closeStore(opened.stateDir);
  const before = await statusJson(args);
  assert.deepEqual([before.notice_shown, before.notice_shown_version], [false, '0123456789ab']);
  assert.notEqual(before.notice_version, '0123456789ab');

  const told = await ok(['stop', '--show-notice', ...args]);
  assert.match(told.stderr, new RegExp(`notice ${before.notice_version}`));
  assert.equal(server.events().length, 1, 'the run that tells the new version sends nothing');
  await ok(['start', '--show-notice', ...args]);
  assert.deepEqual(server.events().map((e) => e.event).sort(), ['start', 'start', 'stop']);
});

test('noticeRequired: where no one can be told, events wait (within the caps), flush included, until a notice was shown', async (t) => {
  const server = await endpoint(t);
  const { state, args } = dirs(t, server);
  await ok(['start', ...args], noticeRequired);
  await ok(['stop', '--background', ...args], noticeRequired);
  const flush = await runBuilt(noticeRequired, ['flush', ...args]);
  assert.equal(flush.code, 1, 'flush says it could not send');
  assert.match(flush.stderr, /notice has not been shown/);
  assert.equal(server.requests.length, 0);
  assert.deepEqual(waitingEvents(state).map((e) => e.event).sort(), ['start', 'stop']);
  const status = await statusJson(args, noticeRequired);
  assert.deepEqual([status.notice_required, status.notice_shown, status.notice_shown_at], [true, false, null]);
  assert.match((await ok(['status', ...args], noticeRequired)).stdout, /notice: version \w+ never shown on this host; events wait for it/);

  const told = await ok(['install', '--result', 'success', '--show-notice', ...args], noticeRequired);
  assert.match(told.stderr, NOTICE);
  assert.equal(server.connections(), 0, 'the run that tells sends nothing, and opens no connection');
  await ok(['start', ...args], noticeRequired);
  assert.deepEqual(server.events().map((e) => e.event).sort(), ['install', 'start', 'start', 'stop']);
});

test('noticeRequired: a disable before anyone was told deletes everything that waited', async (t) => {
  const server = await endpoint(t);
  const { state, args } = dirs(t, server);
  for (let i = 0; i < 3; i++) await ok(['start', ...args], noticeRequired);
  assert.equal(waitingEvents(state).length, 3);
  await ok(['disable', ...args], noticeRequired);
  assert.deepEqual(waitingEvents(state), []);
  await ok(['enable', ...args], noticeRequired);
  await ok(['start', '--show-notice', ...args], noticeRequired);
  await ok(['start', ...args], noticeRequired);
  assert.equal(server.events().length, 2, 'only what came after the disable');
});

// ---------------------------------------------------------------------------------------------
// Local-only mode

test('local records what would have been sent in history and the log file, and never uploads it, not after enable either', async (t) => {
  const server = await endpoint(t);
  const { base, state, config, args } = dirs(t, server);
  const log = path.join(base, 'sent.jsonl');
  const local = await ok(['local', ...args]);
  assert.match(local.stdout, /telemetry is local/);
  assert.ok(existsSync(path.join(config, '.local-only-anonymous-statistics')));
  assert.equal((await statusJson(args)).telemetry, 'local');
  assert.match((await ok(['status', ...args])).stdout, /^telemetry: local$/m);

  await ok(['start', '--log-file', log, ...args]);
  await ok(['fatal', '--process', 'p', '--thread', 't', '--background', ...args]);
  assert.equal(server.requests.length, 0);
  assert.deepEqual(waitingEvents(state), [], 'nothing local is put in the outbox');
  const history = JSON.parse((await ok(['history', '--json', ...args])).stdout);
  assert.deepEqual(history.map((e: { event: string; outcome: string }) => [e.event, e.outcome]), [['start', 'local'], ['fatal', 'local']]);
  const validate = new Ajv2020({ strict: true, strictRequired: false }).compile(captureSchema('example-daemon'));
  for (const entry of history) assert.ok(validate(entry.payload), `what would have been sent is a whole event: ${JSON.stringify(validate.errors)}`);
  const logged = readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(logged.map((line) => [line.local, line.payload.uuid]), [[true, history[0].uuid]]);

  const flush = await ok(['flush', ...args]);
  assert.match(flush.stderr, /local-only/);
  assert.equal((await ok(['consent', ...args])).stdout, '{"enabled":false}\n', 'no browser uploads for a local host');

  const enable = await ok(['enable', ...args]);
  assert.match(enable.stdout, /telemetry is on/);
  await ok(['stop', ...args]);
  assert.deepEqual(server.events().map((e) => e.event), ['stop'], 'only what came after enable');
  const local_uuids = history.map((entry: { uuid: string }) => entry.uuid);
  assert.ok(!server.requests.some((request) => local_uuids.some((uuid: string) => request.body.includes(uuid))));
});

test('an opt-out always wins over local: disable turns it all off, and any opt-out records nothing', async (t) => {
  const { config, state, args } = dirs(t, undefined);
  await ok(['local', ...args]);
  await ok(['start', '--disable-telemetry', ...args]);
  await ok(['start', ...args], BUNDLE, { DO_NOT_TRACK: '1' });
  assert.equal((await statusJson(args.concat([]))).telemetry, 'local');
  assert.deepEqual(JSON.parse((await ok(['history', '--json', ...args])).stdout), [], 'opted-out runs recorded nothing');
  const withVariable = JSON.parse((await runBundle(['status', '--json', ...args], { DO_NOT_TRACK: '1' })).stdout);
  assert.equal(withVariable.telemetry, 'off');
  await ok(['disable', ...args]);
  assert.equal(existsSync(path.join(config, '.local-only-anonymous-statistics')), false);
  assert.equal((await statusJson(args)).telemetry, 'off');
  await ok(['start', ...args]);
  assert.equal(existsSync(path.join(state, 'history.jsonl')), false, 'off records nothing');
  // local again from off: the opt-out marker goes, recording starts.
  assert.match((await ok(['local', ...args])).stdout, /removed .*\.opt-out-from-anonymous-statistics/);
  assert.equal((await statusJson(args)).telemetry, 'local');
});

/** The system calls of one run of the built file and every process it starts. */
async function traced(t: TestContext, args: string[]): Promise<string[]> {
  const out = path.join(tempDir(t), 'strace.txt');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: `--require ${TRAP}`, TRAP_LOG, TMPDIR: tempDir(t) };
  await new Promise<void>((resolve, reject) =>
    execFile('strace', ['-f', '-qq', '-o', out, '-e', 'trace=socket,connect,execve,fork,vfork,clone,clone3', NODE_UNDER_TEST, BUNDLE, ...args], { env, timeout: 20000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`strace: ${error.message} ${stderr}`)) : resolve(),
    ),
  );
  return readFileSync(out, 'utf8').split('\n').filter((line) => line.trim() !== '');
}

/**
 * The name service's own sockets: glibc asks nscd (or systemd's userdb) for the user name the
 * scrubber looks for, on every run that carries free text. They never leave the machine.
 */
const NAME_SERVICE = /sun_path="(\/var\/run\/nscd\/socket|\/run\/nscd\/socket|\/run\/systemd\/userdb\/[^"]+)"/;

/** What a trace shows: network sockets and other connections, programs run, processes (not threads) started. */
function summary(lines: string[]) {
  const call = (name: string) => lines.filter((line) => new RegExp(`^\\d+\\s+${name}\\(`).test(line));
  return {
    sockets: call('socket').filter((line) => !line.includes('(AF_UNIX,')).length + call('connect').filter((line) => !NAME_SERVICE.test(line)).length,
    programs: call('execve').map((line) => line.split('"')[1]),
    processes: [...call('fork'), ...call('vfork'), ...call('clone'), ...call('clone3')].filter((line) => !line.includes('CLONE_THREAD')).length,
  };
}

test('strace: a local run opens no socket and starts no process; the same run turned on does both', async (t) => {
  const server = await endpoint(t);
  const { args } = dirs(t, server);
  await ok(['install', '--result', 'success', '--show-notice', ...args]); // told: later runs send
  // On: a foreground send opens a socket, and --background starts the sender.
  assert.ok(summary(await traced(t, ['start', ...args])).sockets > 0, 'the trace sees a send');
  const background = summary(await traced(t, ['stop', '--background', ...args]));
  assert.ok(background.processes > 0 && background.programs.length > 1, `the trace sees the sender start: ${JSON.stringify(background)}`);

  await ok(['local', ...args]);
  for (const command of [['start'], ['stop', '--background'], ['fatal', '--process', 'p', '--thread', 't']]) {
    assert.deepEqual(summary(await traced(t, [...command, ...args])), { sockets: 0, programs: [NODE_UNDER_TEST], processes: 0 }, command.join(' '));
  }
  const history = JSON.parse((await ok(['history', '--json', ...args])).stdout);
  assert.deepEqual(history.slice(-3).map((e: { outcome: string }) => e.outcome), ['local', 'local', 'local'], 'recorded all the same');
});

// ---------------------------------------------------------------------------------------------
// A revocable id

async function sentId(server: Endpoint, args: string[], file = BUNDLE): Promise<string> {
  const before = server.events().length;
  await ok(['start', ...args], file);
  const events = server.events();
  assert.equal(events.length, before + 1);
  return (events.at(-1)?.properties as { distinct_id: string }).distinct_id;
}

for (const [kind, files] of [
  ['with a machine id', MACHINE_ID],
  ['without one (a random id)', { 'etc/os-release': 'ID=debian\n' }],
] as const) {
  test(`${kind}: the id is stable, survives a reinstall that keeps the state dir, and is new after disable and enable`, async (t) => {
    const server = await endpoint(t);
    const { args } = dirs(t, server, makeRoot(t, files));
    const first = await sentId(server, args);
    assert.equal(await sentId(server, args), first);
    // A reinstall: another copy of the file, the same state dir.
    const reinstalled = path.join(tempDir(t), 'anonymous-statistics.js');
    copyFileSync(BUNDLE, reinstalled);
    assert.equal(await sentId(server, args, reinstalled), first);
    assert.equal(JSON.parse((await ok(['consent', ...args])).stdout).distinct_id, first, 'the dashboard counts the machine once');

    assert.match((await ok(['disable', ...args])).stdout, /the id is forgotten/);
    assert.equal(JSON.parse((await ok(['consent', ...args])).stdout).enabled, false);
    await ok(['enable', ...args]);
    const after = await sentId(server, args);
    assert.notEqual(after, first);
    assert.ok(after.split('-').every((group) => !first.includes(group) || group.length < 8), 'nothing in common to match them up');
    assert.equal(JSON.parse((await ok(['consent', ...args])).stdout).distinct_id, after, 'the dashboard gets the new id');
  });
}
