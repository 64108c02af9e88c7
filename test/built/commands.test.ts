import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BUNDLE, endpoint, listTree, makeRoot, runBuilt, runBundle, tempDir } from '../support/helpers.ts';

/** A CLI tool's view: werf-style started/ended with an execution id, Lumogon-style actions. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** An opted-out command-start's id: RFC 9562 version 8, the decision carried in the id itself. */
const OPTED_OUT_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup(t: Parameters<typeof tempDir>[0]) {
  const state = tempDir(t);
  const config = tempDir(t);
  const root = makeRoot(t, { 'etc/os-release': 'ID=debian\n', 'etc/machine-id': '00112233445566778899aabbccddeeff\n' });
  return { state, config, args: (url: string) => ['--state-dir', state, '--config-dir', config, '--root', root, '--endpoint', url] };
}

test('a command run reports start, action and end tied by one execution id, with option names and never their values', async (t) => {
  const server = await endpoint(t);
  const { args } = setup(t);
  const started = await runBundle(['command-start', '--name', 'converge', '--option', '--repo=registry.example/secret', '--option', 'dry-run', '--env-option', 'WERF_SECRET_KEY', ...args(server.url)]);
  assert.equal(started.code, 0, started.stderr);
  const id = started.stdout.trim();
  assert.match(id, UUID);
  assert.equal(started.stdout, `${id}\n`, 'the id is the only line on stdout');
  assert.equal((await runBundle(['command-action', '--execution-id', id, '--action', 'upload', ...args(server.url)])).code, 0);
  assert.equal((await runBundle(['command-end', '--execution-id', id, '--exit-code', '3', ...args(server.url)])).code, 0);
  const [start, action, end] = server.events().map((event) => event.properties as Record<string, unknown>);
  assert.deepEqual(server.events().map((event) => event.event), ['command-start', 'command-action', 'command-end']);
  for (const properties of [start, action, end]) assert.equal(properties.execution_id, id);
  assert.deepEqual([start.command_name, start.command_flags, start.command_env_options], ['converge', ['repo', 'dry-run'], ['WERF_SECRET_KEY']]);
  assert.deepEqual([action.command_name, action.command_action], ['converge', 'upload']);
  assert.deepEqual([end.command_name, end.command_flags, end.command_env_options, end.exit_code], ['converge', ['repo', 'dry-run'], ['WERF_SECRET_KEY'], 3]);
  assert.equal(typeof end.duration_ms, 'number');
  assert.ok(!JSON.stringify(server.events()).includes('registry.example'), 'an option value never leaves');
});

test('opted out, command-start still prints an id and nothing else happens; command-end and -action with it do nothing, even opted in', async (t) => {
  const server = await endpoint(t);
  const { state, config, args } = setup(t);
  const started = await runBundle(['command-start', '--name', 'converge', ...args(server.url)], { DO_NOT_TRACK: '1' });
  assert.equal(started.code, 0);
  assert.match(started.stdout.trim(), OPTED_OUT_UUID);
  const acted = await runBundle(['command-action', '--execution-id', started.stdout.trim(), '--action', 'upload', ...args(server.url)]);
  const ended = await runBundle(['command-end', '--execution-id', started.stdout.trim(), '--exit-code', '0', ...args(server.url)]);
  assert.deepEqual([acted.code, acted.stdout, ended.code, ended.stdout], [0, '', 0, '']);
  assert.equal(server.requests.length, 0);
  assert.deepEqual([...listTree(state), ...listTree(config)], []);
});

test('an unknown execution id is not an error: the event goes with what is known', async (t) => {
  const server = await endpoint(t);
  const { args } = setup(t);
  const result = await runBundle(['command-end', '--execution-id', '11111111-2222-4333-8444-555555555555', '--exit-code', '1', ...args(server.url)]);
  assert.equal(result.code, 0, result.stderr);
  const properties = server.events()[0].properties as Record<string, unknown>;
  assert.deepEqual([properties.execution_id, properties.exit_code, properties.duration_ms], ['11111111-2222-4333-8444-555555555555', 1, undefined]);
});

test('a malformed id or option name is a usage error naming it, with nothing sent or written', async (t) => {
  const server = await endpoint(t);
  const { state, args } = setup(t);
  const bad = await runBundle(['command-end', '--execution-id', 'not-an-id', '--exit-code', '0', ...args(server.url)]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--execution-id must be the id command-start printed/);
  const option = await runBundle(['command-start', '--name', 'converge', '--option', 'a b', ...args(server.url)]);
  assert.equal(option.code, 2);
  assert.match(option.stderr, /--option takes an option's name/);
  assert.deepEqual([server.requests.length, listTree(state)], [0, []]);
});

test('a daemon run links start to stop: run id, uptime, and how the run before it ended', async (t) => {
  const server = await endpoint(t);
  const { args } = setup(t);
  for (const call of [['start'], ['fatal', '--process', 'd', '--thread', 'MAIN', '--message', '-12 ENOMEM'], ['start'], ['start'], ['stop']]) {
    assert.equal((await runBundle([...call, ...args(server.url)])).code, 0);
  }
  const events = server.events().map((event) => ({ event: event.event, ...(event.properties as Record<string, unknown>) }) as Record<string, unknown>);
  const [firstStart, fatal, secondStart, thirdStart, stop] = events;
  assert.equal(firstStart.previous_run_end, 'none');
  assert.equal(fatal.run_id, firstStart.run_id);
  assert.equal(fatal.fatal_message, '-12 ENOMEM', 'a message that begins with "-" is a message');
  assert.equal(typeof fatal.run_uptime_s, 'number');
  assert.equal(secondStart.previous_run_end, 'fatal');
  assert.notEqual(secondStart.run_id, firstStart.run_id);
  assert.equal(thirdStart.previous_run_end, 'unknown', 'the second run ended without a stop or fatal');
  assert.equal(stop.run_id, thirdStart.run_id);
});

test('the installer\'s settings beside the installed copy set its dirs; an unreadable one keeps telemetry off', async (t) => {
  const server = await endpoint(t);
  const { state, config } = setup(t);
  const installDir = tempDir(t);
  const copy = path.join(installDir, 'anonymous-statistics.js');
  copyFileSync(BUNDLE, copy);
  writeFileSync(path.join(installDir, 'anonymous-statistics.json'), JSON.stringify({ configDir: config, stateDir: state }));
  const run = () => runBuilt(copy, ['status', '--json']);
  const status = JSON.parse((await run()).stdout);
  assert.deepEqual([status.enabled, status.state_dir, status.marker_file], [true, state, path.join(config, '.opt-out-from-anonymous-statistics')]);
  writeFileSync(path.join(config, '.opt-out-from-anonymous-statistics'), '');
  assert.equal(JSON.parse((await run()).stdout).enabled, false, 'the marker the installer wrote holds');
  writeFileSync(path.join(installDir, 'anonymous-statistics.json'), '{not json');
  const broken = JSON.parse((await run()).stdout);
  assert.deepEqual([broken.enabled, broken.opt_outs[0].mechanism], [false, 'install-settings']);
  assert.equal(server.requests.length, 0);
});
