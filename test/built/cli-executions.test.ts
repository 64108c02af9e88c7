import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { build } from '../../scripts/build.ts';
import type { Endpoint } from '../../scripts/endpoint.ts';
import { endpoint, listTree, NODE_UNDER_TEST, PROJECT_DIR, runBuilt, tempDir, TRAP_LOG, trapViolations } from '../support/helpers.ts';

/**
 * CONTRACT.md "An execution keeps its start's decision", and the werf-like and Lumogon-like
 * example scripts (docs/examples/) run verbatim against flavours built as their comments say.
 */

const EXAMPLES = path.join(PROJECT_DIR, 'docs/examples');
const TRAP = path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs');
const RECORDER = path.join(PROJECT_DIR, 'test/support/fs-recorder.cjs');
const OPTED_IN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const OPTED_OUT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MARKER = '.opt-out-from-anonymous-statistics';

/** The flavours the example scripts' comments describe; dirs and endpoint are set per run. */
const FLAVOURS = {
  werf: { product: 'werf', commandName: 'werf', optOutEnv: { WERF_TELEMETRY: '0' } },
  lumogon: { product: 'lumogon', optOutEnv: { LUMOGON_DISABLE_ANALYTICS: 'any' }, optOutFlag: '--disable-analytics' },
} as const;
const built: Record<keyof typeof FLAVOURS, string> = { werf: '', lumogon: '' };
let work: string;

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-executions-'));
  for (const [name, flavour] of Object.entries(FLAVOURS) as [keyof typeof FLAVOURS, (typeof FLAVOURS)[keyof typeof FLAVOURS]][]) {
    const vendorFile = path.join(work, `${name}.json`);
    // No run may fall back to these: every run names its own dirs and receiver.
    const unused = path.join(work, 'unused', name);
    writeFileSync(vendorFile, JSON.stringify({ ...flavour, endpoint: 'http://127.0.0.1:9', apiKey: `phc_${name}_test`, configDir: `${unused}/etc`, stateDir: `${unused}/var` }));
    built[name] = await build({ vendorFile, outfile: path.join(work, `${name}-telemetry.js`) });
  }
});

after(() => {
  rmSync(work, { recursive: true, force: true });
  assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address');
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A person's machine: its own state and config dirs, and a receiver on 127.0.0.1. */
async function machine(t: TestContext) {
  const server = await endpoint(t);
  const state = tempDir(t);
  const config = tempDir(t);
  const env = { TELEMETRY_ENDPOINT: server.url, TELEMETRY_STATE_DIR: state, TELEMETRY_CONFIG_DIR: config, TMPDIR: tempDir(t), TRAP_LOG };
  const touched = () => [...listTree(state), ...listTree(config)];
  return { server, state, config, env, touched };
}

/** Runs an example script as a user runs it: the file itself, `node` on PATH, the telemetry tool where its variable says. */
function runExample(script: 'werf-like.sh' | 'lumogon-like.sh', args: string[], env: Record<string, string>): Promise<Run> {
  const tool = script === 'werf-like.sh' ? { WERF_TELEMETRY_TOOL: built.werf } : { LUMOGON_TELEMETRY_TOOL: built.lumogon };
  const fullEnv = { PATH: `${path.dirname(NODE_UNDER_TEST)}:/usr/bin:/bin`, NODE_OPTIONS: `--require ${TRAP}`, ...tool, ...env };
  return new Promise((resolve) => {
    execFile(path.join(EXAMPLES, script), args, { env: fullEnv, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Waits, request by request, until `count` events have arrived (a --background sender is a detached child). */
async function arrived(server: Endpoint, count: number): Promise<Record<string, any>[]> {
  while (server.events().length < count) await server.received(server.requests.length + 1);
  return server.events() as Record<string, any>[];
}

function byEvent(events: Record<string, any>[]): Record<string, Record<string, any>> {
  return Object.fromEntries(events.map((event) => [event.event, event.properties]));
}

test('lumogon-like.sh, opted in with ordinary arguments: start, upload and end arrive linked, with option names only', { timeout: 30_000 }, async (t) => {
  const { server, env } = await machine(t);
  const result = await runExample('lumogon-like.sh', ['--format', 'json', '--keep-harvesters', 'report', 'db-secret-1', 'web-2'], env);
  assert.deepEqual([result.code, result.stdout, result.stderr], [0, '{"command": "report", "containers": 2}\n', '']);
  const events = await arrived(server, 3);
  assert.deepEqual(events.map((event) => event.event).sort(), ['command-action', 'command-end', 'command-start']);
  const { 'command-start': start, 'command-action': action, 'command-end': end } = byEvent(events);
  assert.match(start.execution_id, OPTED_IN_ID);
  assert.deepEqual([action.execution_id, end.execution_id], [start.execution_id, start.execution_id], 'one execution');
  assert.deepEqual([start.command_name, start.command_flags, start.command_env_options], ['report', ['format', 'keep-harvesters'], []]);
  assert.deepEqual([action.command_name, action.command_action], ['report', 'upload']);
  assert.deepEqual([end.command_name, end.command_flags, end.exit_code], ['report', ['format', 'keep-harvesters'], 0]);
  assert.equal(typeof end.duration_ms, 'number');
  const bodies = server.requests.map((request) => request.body).join('\n');
  for (const value of ['json', 'db-secret-1', 'web-2']) assert.ok(!bodies.includes(value), `the user's ${value} left`);
});

test('lumogon-like.sh, opted out by --disable-analytics or LUMOGON_DISABLE_ANALYTICS: the command runs, nothing is sent or written', { timeout: 30_000 }, async (t) => {
  for (const { args, variables } of [
    { args: ['--disable-analytics', '--format=json', 'report', 'db-1'], variables: {} },
    { args: ['--format', 'json', 'report', 'db-1'], variables: { LUMOGON_DISABLE_ANALYTICS: '1' } },
    { args: ['--', 'scan', '--not-an-option'], variables: { DO_NOT_TRACK: '0' } },
  ]) {
    const { server, env, touched } = await machine(t);
    const result = await runExample('lumogon-like.sh', args, { ...env, ...variables });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^(\{"command": "report", "containers": 1\}|lumogon-like: scan of --not-an-option)\n$/);
    // Each call ran in the foreground up to its opt-out; a --background child would have needed a stored event.
    assert.deepEqual(touched(), [], `${args.join(' ')}: files were written`);
    assert.equal(server.requests.length, 0, `${args.join(' ')}: something was sent`);
  }
});

test('werf-like.sh, opted in: start and end arrive linked, with option and variable names and the exit status', { timeout: 30_000 }, async (t) => {
  const { server, env } = await machine(t);
  const ok = await runExample('werf-like.sh', ['--dry-run', 'converge', 'app'], { ...env, WERF_REPO: 'registry.example/secret-app' });
  assert.deepEqual([ok.code, ok.stdout, ok.stderr], [0, 'werf-like: would converge app\n', '']);
  const failed = await runExample('werf-like.sh', ['build', 'app'], env);
  assert.deepEqual([failed.code, failed.stderr], [1, 'werf-like: build needs --repo or WERF_REPO\n']);
  const events = await arrived(server, 4);
  const starts = events.filter((event) => event.event === 'command-start').map((event) => event.properties);
  const ends = events.filter((event) => event.event === 'command-end').map((event) => event.properties);
  const converge = starts.find((start) => start.command_name === 'converge');
  const build = starts.find((start) => start.command_name === 'build');
  assert.ok(converge && build, 'both starts arrived, named');
  assert.deepEqual([converge.command_flags, converge.command_env_options], [['dry-run'], ['WERF_REPO']]);
  assert.deepEqual(ends.map((end) => [end.execution_id, end.command_name, end.exit_code]).sort(), [
    [build.execution_id, 'build', 1],
    [converge.execution_id, 'converge', 0],
  ].sort());
  assert.ok(!server.requests.some((request) => request.body.includes('registry.example')), "the repo's value left");
});

test('werf-like.sh, opted out by WERF_TELEMETRY=0 or DO_NOT_TRACK: nothing is sent or written', { timeout: 30_000 }, async (t) => {
  for (const variables of [{ WERF_TELEMETRY: '0' }, { WERF_TELEMETRY: ' Off ' }, { DO_NOT_TRACK: '1' }] as Record<string, string>[]) {
    const { server, env, touched } = await machine(t);
    const result = await runExample('werf-like.sh', ['--repo=registry.example/app', 'converge', 'app'], { ...env, ...variables });
    assert.deepEqual([result.code, result.stdout, result.stderr], [0, 'werf-like: converge app\n', '']);
    assert.deepEqual(touched(), []);
    assert.equal(server.requests.length, 0);
  }
});

/** Every way to opt out, each given to command-start alone. */
const START_OPT_OUTS: { flavour: keyof typeof FLAVOURS; args?: string[]; env?: Record<string, string>; marker?: true; what: string }[] = [
  { flavour: 'lumogon', args: ['--disable-telemetry'], what: 'the flag' },
  { flavour: 'lumogon', args: ['--disable-analytics'], what: "the vendor's flag" },
  { flavour: 'lumogon', env: { DISABLE_TELEMETRY: '1' }, what: 'DISABLE_TELEMETRY' },
  { flavour: 'lumogon', env: { DO_NOT_TRACK: '0' }, what: 'DO_NOT_TRACK=0' },
  { flavour: 'lumogon', env: { LUMOGON_DISABLE_ANALYTICS: 'yes' }, what: "the vendor's \"any\" variable" },
  { flavour: 'werf', env: { WERF_TELEMETRY: 'false' }, what: "the vendor's \"0\" variable" },
  { flavour: 'werf', marker: true, what: 'the marker file' },
];

test("an execution keeps its start's decision: opted out by any mechanism at command-start, its action and end send, write and read nothing", { timeout: 60_000 }, async (t) => {
  for (const { flavour, args = [], env: optOutEnv = {}, marker, what } of START_OPT_OUTS) {
    const { server, config, env, touched } = await machine(t);
    if (marker) writeFileSync(path.join(config, MARKER), '');
    const started = await runBuilt(built[flavour], ['command-start', '--name', 'scan', '--option', 'format', ...args], { ...env, ...optOutEnv });
    assert.deepEqual([started.code, started.stderr], [0, ''], what);
    const id = started.stdout.trim();
    assert.equal(started.stdout, `${id}\n`, `${what}: the id is the only line`);
    assert.match(id, OPTED_OUT_ID, `${what}: a plain UUID, version 8`);
    const record = path.join(tempDir(t), 'reads');
    // Opted in by everything they are given themselves, in the foreground, with an explicit endpoint.
    for (const call of [
      ['command-action', '--execution-id', id, '--action', 'upload', '--endpoint', server.url],
      ['command-end', '--execution-id', id.toUpperCase(), '--exit-code', '3', '--endpoint', server.url, '--log-file', path.join(config, 'sent.log')],
      ['command-end', '--execution-id', id, '--exit-code', '0', '--background'],
    ]) {
      writeFileSync(record, '');
      const result = await runBuilt(built[flavour], call, { ...env, FS_RECORD: record, NODE_OPTIONS: `--require ${TRAP} --require ${RECORDER}` });
      assert.deepEqual([result.code, result.stdout, result.stderr], [0, '', ''], `${what}: ${call[0]}`);
      const reads = readFileSync(record, 'utf8').split('\n').filter((line) => line !== '' && !line.endsWith(built[flavour]));
      assert.deepEqual(reads, [], `${what}: ${call[0]} read files past its opt-out`);
    }
    assert.deepEqual(touched(), marker ? [MARKER] : [], `${what}: files were written`);
    assert.equal(server.requests.length, 0, `${what}: something was sent`);
  }
});

test('opted in, command-start prints a version-4 id and its end is sent; a person can still dry-run an opted-out execution', { timeout: 30_000 }, async (t) => {
  const { server, env, touched } = await machine(t);
  const started = await runBuilt(built.lumogon, ['command-start', '--name', 'scan'], env);
  assert.match(started.stdout.trim(), OPTED_IN_ID);
  assert.equal((await runBuilt(built.lumogon, ['command-end', '--execution-id', started.stdout.trim(), '--exit-code', '0'], env)).code, 0);
  assert.deepEqual(server.events().map((event) => [event.event, (event.properties as Record<string, unknown>).command_name]), [
    ['command-start', 'scan'],
    ['command-end', 'scan'],
  ]);
  const optedOut = (await runBuilt(built.lumogon, ['command-start', '--name', 'scan', '--disable-analytics'], env)).stdout.trim();
  const before = touched();
  const dry = await runBuilt(built.lumogon, ['command-end', '--execution-id', optedOut, '--exit-code', '0', '--dry-run'], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(JSON.parse(dry.stdout).properties.execution_id, optedOut);
  assert.match(dry.stderr, /telemetry is off \(the execution's command-start ran opted out .*\); nothing would be sent/);
  assert.deepEqual([touched(), server.requests.length], [before, 2]);
});
