import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Endpoint } from '../../scripts/endpoint.ts';
import { BUNDLE, endpoint, NODE_UNDER_TEST, PROJECT_DIR, reachableByAnyUser, tempDir, TRAP_LOG, trapViolations, unlessRoot, waitingEvents, type CliResult } from '../support/helpers.ts';

/**
 * The pieces a vendor copies around the built file: the example installer, the systemd drop-in
 * and the SysV hook, run as a system runs them (sh, real directories, the loopback endpoint).
 */

const SCRIPTS = path.join(PROJECT_DIR, 'scripts');
const INSTALLER = path.join(SCRIPTS, 'install.sh');
const DROP_IN = path.join(SCRIPTS, 'systemd/anonymous-statistics.conf');
const STOP_HELPER = path.join(SCRIPTS, 'systemd/stop-exit-code.sh');
const SYSV_HOOK = path.join(SCRIPTS, 'sysv/anonymous-statistics-hook.sh');
const TRAP = path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs');
const MARKER = '.opt-out-from-anonymous-statistics';
/** Where the drop-in and the hook expect the installed files (install.sh's default prefix). */
const INSTALLED_DIR = '/lib/example-daemon';
/** "Returns at once", with room for node's start-up on a loaded CI machine. */
const PROMPT_MS = 3000;

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

/**
 * Runs a program (sh, mostly) with a minimal environment like runBundle's: node on PATH, and
 * the loopback-only trap preloaded into every node started below it, detached children included.
 */
function run(file: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const started = performance.now();
  const fullEnv = {
    PATH: `${path.dirname(NODE_UNDER_TEST)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    NODE_OPTIONS: `--require ${TRAP}`,
    TRAP_LOG,
    ...env,
  };
  return new Promise((resolve) => {
    execFile(file, args, { env: fullEnv, timeout: 20000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

interface Received {
  event: string;
  properties: Record<string, unknown>;
}

/** Background sending arrives a moment later: wait for `count` events (5 s at most). */
async function eventsArriving(server: Endpoint, count: number): Promise<Received[]> {
  const deadline = Date.now() + 5000;
  while (server.events().length < count && Date.now() < deadline) await delay(50);
  return server.events() as unknown as Received[];
}

/** Temporary config and state dirs, and the environment that points the tool at them and at the endpoint. */
function telemetryEnv(t: TestContext, server: Endpoint) {
  const base = tempDir(t);
  const config = path.join(base, 'config');
  const state = path.join(base, 'state');
  return { base, config, state, env: { TELEMETRY_ENDPOINT: server.url, TELEMETRY_CONFIG_DIR: config, TELEMETRY_STATE_DIR: state } };
}

/** A PATH dir holding the few tools install.sh uses, and no node. */
function pathWithoutNode(t: TestContext): string {
  const bin = tempDir(t, 'anon-stats-bin-');
  const searched = (process.env.PATH ?? '/usr/bin:/bin').split(':');
  for (const tool of ['dirname', 'sed', 'cat', 'mkdir', 'chmod', 'mv']) {
    const found = searched.map((dir) => path.join(dir, tool)).find((file) => existsSync(file));
    assert.ok(found, `${tool} not found on PATH`);
    symlinkSync(found, path.join(bin, tool));
  }
  return bin;
}

// ---------------------------------------------------------------------------------------------
// scripts/install.sh

/** The installer run as a vendor runs it, on `src` (the file built from the current src/ unless a test built its own). */
function install(args: string[], env: Record<string, string>, src = BUNDLE): Promise<CliResult> {
  return run('/bin/sh', [INSTALLER, '--src', src, ...args], env);
}

/** The first-run notice, which the installer has the tool show on its stderr. */
const NOTICE = /anonymous usage statistics/g;

/** The installed copy run bare, as a hook runs it: the endpoint and the trap, no dirs. */
function bare(server: Endpoint): Record<string, string> {
  return { TELEMETRY_ENDPOINT: server.url };
}

/** The built file with other banner values, as a vendor's build would make it. */
function vendorBuild(t: TestContext, banner: Record<string, string>): string {
  let text = readFileSync(BUNDLE, 'utf8');
  for (const [key, value] of Object.entries(banner)) {
    const line = new RegExp(`^// ${key}:.*$`, 'm');
    assert.match(text, line, `the build writes "// ${key}:"`);
    text = text.replace(line, `// ${key}: ${value}`);
  }
  const file = path.join(tempDir(t), 'anonymous-statistics.js');
  writeFileSync(file, text);
  return file;
}

test('the installer puts a runnable file in the prefix, shows the notice once, and its install report goes with the next run', async (t) => {
  const server = await endpoint(t);
  const { base, config, state, env } = telemetryEnv(t, server);
  const prefix = path.join(base, 'prefix');
  const result = await install(['--prefix', prefix], env);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr.match(NOTICE)?.length, 1, `the notice, once, on the installer's stderr: ${result.stderr}`);
  assert.ok(result.ms < PROMPT_MS, `the installer took ${Math.round(result.ms)} ms`);

  const installed = path.join(prefix, 'lib/example-daemon/anonymous-statistics.js');
  assert.ok(readFileSync(installed).equals(readFileSync(BUNDLE)), 'the installed file is the built one');
  assert.ok(statSync(installed).mode & 0o100, 'the installed file is executable');
  for (const helper of ['stop-exit-code.sh', 'anonymous-statistics-hook.sh']) {
    assert.ok(statSync(path.join(prefix, 'lib/example-daemon', helper)).mode & 0o100, `${helper} is installed, executable`);
  }
  const version = await run(NODE_UNDER_TEST, [installed, '--version']);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /\S/);

  // The run that told started no sender: nothing can arrive from it, and its report waits.
  assert.equal(server.requests.length, 0, 'the run that shows the notice sends nothing');
  const [held] = waitingEvents(state);
  assert.deepEqual([held.event, held.properties.install_result, String(held.properties.install_code)], ['install', 'success', '0']);
  assert.equal(existsSync(path.join(config, MARKER)), false, 'no opt-out marker when opted in');

  const again = await install(['--prefix', prefix], env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stderr, '', 'the notice is shown once per state dir');
  const events = await eventsArriving(server, 2);
  assert.deepEqual(events.map((e) => e.event), ['install', 'install']);
  assert.ok(events.some((e) => (e as unknown as { uuid: string }).uuid === held.uuid), 'the held report went with the next run');
});

test('the installer records its dirs beside the installed copy, which uses them, and its hook, when run bare', async (t) => {
  const server = await endpoint(t);
  const { base, env } = telemetryEnv(t, server);
  const prefix = path.join(base, 'prefix');
  const { TELEMETRY_CONFIG_DIR: _config, TELEMETRY_STATE_DIR: _state, ...installEnv } = env;
  const result = await install(['--prefix', prefix], installEnv);
  assert.equal(result.code, 0, result.stderr);
  const lib = path.join(prefix, 'lib/example-daemon');
  const state = path.join(prefix, 'var/lib/example-daemon/anonymous-statistics');
  assert.deepEqual(JSON.parse(readFileSync(path.join(lib, 'anonymous-statistics.json'), 'utf8')), {
    configDir: path.join(prefix, 'etc/example-daemon'),
    stateDir: state,
  });
  const recorded = JSON.parse(readFileSync(path.join(lib, 'anonymous-statistics.json'), 'utf8')).stateDir;
  assert.equal(waitingEvents(recorded).length, 1, 'the install report waits in the recorded state dir (the run that told sends nothing)');

  // Neither TELEMETRY_*_DIR nor ANONYMOUS_STATISTICS_JS: what a hook under a --prefix has.
  const hook = await run('/bin/sh', [path.join(lib, 'anonymous-statistics-hook.sh'), 'start'], bare(server));
  assert.deepEqual([hook.code, hook.stderr], [0, '']);
  const events = await eventsArriving(server, 2);
  assert.deepEqual(events.map((e) => e.event).sort(), ['install', 'start']);
  const status = await run(NODE_UNDER_TEST, [path.join(lib, 'anonymous-statistics.js'), 'status'], bare(server));
  assert.ok(status.stdout.includes(state), `status names the installer's state dir:\n${status.stdout}`);
});

test("the installer's TELEMETRY_CONFIG_DIR and TELEMETRY_STATE_DIR are what it records", async (t) => {
  const server = await endpoint(t);
  const { base, config, state, env } = telemetryEnv(t, server);
  const prefix = path.join(base, 'prefix');
  const result = await install(['--prefix', prefix], env);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(readFileSync(path.join(prefix, 'lib/example-daemon/anonymous-statistics.json'), 'utf8')), { configDir: config, stateDir: state });
});

test("the product name and default dirs come from the built file's banner", async (t) => {
  const server = await endpoint(t);
  const base = tempDir(t);
  const src = vendorBuild(t, { product: 'other-daemon', 'config-dir': '/etc/other/conf', 'state-dir': '/var/lib/other "quoted"' });
  const prefix = path.join(base, 'prefix');
  const result = await install(['--prefix', prefix], bare(server), src);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(readFileSync(path.join(prefix, 'lib/other-daemon/anonymous-statistics.json'), 'utf8')), {
    configDir: path.join(prefix, 'etc/other/conf'),
    stateDir: path.join(prefix, 'var/lib/other "quoted"'),
  });
  // The install report waits (its run showed the notice): the installed copy, run bare, sends it.
  const flush = await run(NODE_UNDER_TEST, [path.join(prefix, 'lib/other-daemon/anonymous-statistics.js'), 'flush'], bare(server));
  assert.equal(flush.code, 0, flush.stderr);
  const history = path.join(prefix, 'var/lib/other "quoted"', 'history.jsonl');
  // The sender records what it did just after the receiver answered: wait for that before cleaning up.
  for (const deadline = Date.now() + 5000; Date.now() < deadline && !(existsSync(history) && readFileSync(history, 'utf8').includes('"sent"')); ) await delay(20);
  assert.match(readFileSync(history, 'utf8'), /"sent"/, 'the report used the recorded state dir');
});

test('the installer refuses a --src that is not a built file with the banner, in one line, installing nothing', async (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'anonymous-statistics.js');
  writeFileSync(src, readFileSync(BUNDLE, 'utf8').replace(/^\/\/ product: .*\n/m, ''));
  const prefix = path.join(base, 'prefix');
  const cases: [string, RegExp][] = [
    [src, /^install\.sh: --src .*anonymous-statistics\.js has no usable '\/\/ product:' banner line; is it a built anonymous-statistics\.js\? \(usage: sh install\.sh \[--src FILE\].*\)\n$/],
    [path.join(base, 'missing.js'), /^install\.sh: --src .*missing\.js: no such readable file \(usage: .*\)\n$/],
  ];
  for (const [file, message] of cases) {
    const result = await install(['--prefix', prefix], { TELEMETRY_ENDPOINT: 'http://127.0.0.1:9/' }, file);
    assert.equal(result.code, 2, file);
    assert.match(result.stderr, message);
  }
  assert.equal(existsSync(prefix), false);
});

test('--src installs exactly that flavour under its own product name; without --src, dist/anonymous-statistics.js', async (t) => {
  const server = await endpoint(t);
  const base = tempDir(t);
  const flavour = vendorBuild(t, { product: 'acme-daemon', 'config-dir': '/etc/acme', 'state-dir': '/var/lib/acme' });
  const result = await install(['--prefix', path.join(base, 'vendor')], bare(server), flavour);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(readFileSync(path.join(base, 'vendor/lib/acme-daemon/anonymous-statistics.js')).equals(readFileSync(flavour)));
  assert.deepEqual(readdirSync(path.join(base, 'vendor/lib')), ['acme-daemon']);
  await eventsArriving(server, 1);

  // Opted out, so the committed example build sends nothing.
  const plain = await run('/bin/sh', [INSTALLER, '--prefix', path.join(base, 'default'), '--disable-telemetry'], bare(server));
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok(readFileSync(path.join(base, 'default/lib/example-daemon/anonymous-statistics.js')).equals(readFileSync(path.join(PROJECT_DIR, 'dist/anonymous-statistics.js'))));
});

test('install.sh --help prints the usage on stdout and exits 0, installing nothing', async (t) => {
  const base = tempDir(t);
  const result = await install(['--help', '--prefix', path.join(base, 'prefix')], {});
  assert.deepEqual([result.code, result.stderr], [0, '']);
  assert.match(result.stdout, /^usage: sh install\.sh \[--src FILE\] \[--prefix DIR\] \[--user NAME\] \[--disable-telemetry\]\n/);
  assert.deepEqual(readdirSync(base), []);
});

test('the installer returns at once even when the endpoint never answers', async (t) => {
  const server = await endpoint(t, { kind: 'hang' });
  const { base, env } = telemetryEnv(t, server);
  // The first install shows the notice and sends nothing; the second one's report goes out.
  for (const run_ of ['first', 'second']) {
    // A foreground send would wait this long for the hanging endpoint.
    const result = await install(['--prefix', path.join(base, 'prefix')], { ...env, TELEMETRY_TIMEOUT_MS: '8000' });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.ms < PROMPT_MS, `the ${run_} install waited ${Math.round(result.ms)} ms on the network`);
  }
  const deadline = Date.now() + 5000;
  while (server.requests.length === 0 && Date.now() < deadline) await delay(50);
  assert.equal(server.requests.length, 1, 'the report was still made, by the detached child');
  // Let the child see the connection drop and finish before the temporary dirs are removed.
  await server.close();
  await delay(500);
});

const INSTALL_OPT_OUTS: [string, string[], Record<string, string>][] = [
  ['--disable-telemetry', ['--disable-telemetry'], {}],
  ['DO_NOT_TRACK=1', [], { DO_NOT_TRACK: '1' }],
  ['DISABLE_TELEMETRY=0', [], { DISABLE_TELEMETRY: '0' }],
];

test('an opted-out install writes the marker, starts no report, and the installed copy and its hook stay quiet when run bare', async (t) => {
  for (const [name, flags, optOutEnv] of INSTALL_OPT_OUTS) {
    const server = await endpoint(t);
    const { base, config, state, env } = telemetryEnv(t, server);
    const prefix = path.join(base, 'prefix');
    const result = await install(['--prefix', prefix, ...flags], { ...env, ...optOutEnv });
    assert.equal(result.code, 0, `${name}: ${result.stderr}`);
    assert.equal(result.stderr, '', name);
    assert.match(result.stdout, /anonymous statistics disabled/, name);
    const lib = path.join(prefix, 'lib/example-daemon');
    assert.ok(existsSync(path.join(lib, 'anonymous-statistics.js')), `${name}: the file is installed all the same`);
    assert.ok(existsSync(path.join(config, MARKER)), `${name}: the marker keeps the daemon's own hooks quiet too`);

    // Run bare, as hooks run it: no DO_NOT_TRACK, no dirs. An opted-out run starts no child,
    // so once these return nothing more can arrive.
    const hook = await run('/bin/sh', [path.join(lib, 'anonymous-statistics-hook.sh'), 'start'], bare(server));
    const stop = await run(NODE_UNDER_TEST, [path.join(lib, 'anonymous-statistics.js'), 'stop'], bare(server));
    assert.deepEqual([hook.code, stop.code], [0, 0], `${name}: ${hook.stderr}${stop.stderr}`);
    const status = await run(NODE_UNDER_TEST, [path.join(lib, 'anonymous-statistics.js'), 'status'], bare(server));
    assert.match(status.stdout, /telemetry: off/, `${name}: ${status.stdout}`);
    assert.equal(existsSync(state), false, `${name}: nothing ran that could write the state dir`);
    assert.equal(server.requests.length, 0, `${name}: the endpoint heard from it`);
  }
});

test("a vendor's opt-out flag and variables, named in the banner, opt the install out", async (t) => {
  const src = vendorBuild(t, { 'opt-out-env': 'ACME_NO_ANALYTICS=any ACME_TELEMETRY=0', 'opt-out-flag': '--disable-analytics' });
  const cases: [string, string[], Record<string, string>, boolean][] = [
    ['the flag', ['--disable-analytics'], {}, true],
    ['an "any" variable set to anything', [], { ACME_NO_ANALYTICS: 'yes' }, true],
    ['a "0" variable set to Off', [], { ACME_TELEMETRY: ' Off ' }, true],
    ['a "0" variable set to 1', [], { ACME_TELEMETRY: '1' }, false],
  ];
  for (const [name, flags, optOutEnv, optedOut] of cases) {
    const server = await endpoint(t);
    const { base, config, state, env } = telemetryEnv(t, server);
    const result = await install(['--prefix', path.join(base, 'prefix'), ...flags], { ...env, ...optOutEnv }, src);
    assert.equal(result.code, 0, `${name}: ${result.stderr}`);
    assert.equal(existsSync(path.join(config, MARKER)), optedOut, `${name}: the marker`);
    // Neither sends now: opted out, nothing at all; opted in, the report waits (the notice was shown).
    assert.equal(server.requests.length, 0, name);
    assert.equal(waitingEvents(state).length, optedOut ? 0 : 1, `${name}: the report`);
  }
});

test('--user gives the state dir to the service user', async (t) => {
  const server = await endpoint(t);
  const { base, state, env } = telemetryEnv(t, server);
  const me = os.userInfo().username;
  const result = await install(['--prefix', path.join(base, 'prefix'), '--user', me], env);
  assert.equal(result.code, 0, result.stderr);
  const stat = statSync(state);
  assert.deepEqual([stat.uid, stat.mode & 0o777], [os.userInfo().uid, 0o700]);
});

test('under umask 077, in either order of the README lines, every dir the installer makes is 0755 and the service user gets its 0700 state dir', { skip: unlessRoot('--user nobody, then running as nobody') }, async (t) => {
  const { node, trap } = reachableByAnyUser();
  // Each install shows the notice where it was not shown yet, and its report then waits for a later
  // run in that state dir: in the second order root's report waits in root's own fallback dir.
  const orders: [string, string[][], string[]][] = [
    ['--prefix, then --prefix --user', [[], ['--user', 'nobody']], ['install', 'install', 'start']],
    ['--prefix --user, then --prefix', [['--user', 'nobody'], []], ['install', 'start']],
  ];
  for (const [order, runs, arriving] of orders) {
    const server = await endpoint(t);
    const base = tempDir(t);
    chmodSync(base, 0o755);
    const prefix = path.join(base, 'opt/example');
    // node, and the trap every node below preloads, from where nobody can reach them (su resets PATH, not NODE_OPTIONS).
    // A root run finds the state dir nobody's and takes its fallback in a temp dir of this test's own.
    const env = { PATH: `${path.dirname(node)}:${process.env.PATH ?? '/usr/bin:/bin'}`, NODE_OPTIONS: `--require ${trap}`, TMPDIR: tempDir(t), ...bare(server) };
    for (const flags of runs) {
      const result = await run('/bin/sh', ['-c', 'umask 077 && exec /bin/sh "$@"', 'sh', INSTALLER, '--src', BUNDLE, '--prefix', prefix, ...flags], env);
      assert.equal(result.code, 0, `${order}: ${result.stderr}`);
    }
    const state = path.join(prefix, 'var/lib/example-daemon/anonymous-statistics');
    for (const dir of [base, path.join(base, 'opt'), prefix, ...['lib', 'lib/example-daemon', 'etc', 'etc/example-daemon', 'var', 'var/lib', 'var/lib/example-daemon'].map((rel) => path.join(prefix, rel))]) {
      assert.equal((statSync(dir).mode & 0o777).toString(8), '755', `${order}: ${dir}`);
    }
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
    assert.deepEqual([(statSync(state).mode & 0o777).toString(8), statSync(state).uid], ['700', nobody], `${order}: the state dir`);

    // The installed copy run bare by the service user, as its hook runs it: the installer's state dir is its.
    const asNobody = (args: string[]) =>
      run('setpriv', [`--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups', node, path.join(prefix, 'lib/example-daemon/anonymous-statistics.js'), ...args], env);
    const status = JSON.parse((await asNobody(['status', '--json'])).stdout);
    assert.deepEqual([status.state_dir, status.unusable_state_dirs], [state, []], order);
    const started = await asNobody(['start']);
    assert.deepEqual([started.code, started.stderr], [0, ''], order);
    assert.deepEqual((await eventsArriving(server, arriving.length)).map((event) => event.event).sort(), arriving, order);
  }
});

test('--user with an unknown user is a usage error, before anything is installed or sent', async (t) => {
  const server = await endpoint(t);
  const { base, env } = telemetryEnv(t, server);
  const result = await install(['--prefix', path.join(base, 'prefix'), '--user', 'no-such-user-here'], env);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /no such user: no-such-user-here/);
  assert.deepEqual(readdirSync(base), []);
  assert.equal(server.requests.length, 0);
});

test('a failed install is reported as a failure and keeps its own exit status', async (t) => {
  const server = await endpoint(t);
  const { base, env } = telemetryEnv(t, server);
  const notADir = path.join(base, 'file');
  writeFileSync(notADir, '');
  const result = await install(['--prefix', notADir], env);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /installation failed \(status 1\)/);
  // Its run showed the notice, so the report waits for the next run: a flush.
  const flush = await run(NODE_UNDER_TEST, [BUNDLE, 'flush'], env);
  assert.equal(flush.code, 0, flush.stderr);
  const events = await eventsArriving(server, 1);
  assert.equal(events.length, 1, JSON.stringify(events));
  assert.deepEqual([events[0].event, events[0].properties.install_result, String(events[0].properties.install_code)], ['install', 'failure', '1']);
});

test('a report that fails never changes the installer exit status', async (t) => {
  const base = tempDir(t);
  // A non-loopback http: endpoint is a usage error: the tool exits 2 before any connection.
  const env = { TELEMETRY_ENDPOINT: 'http://203.0.113.7/', TELEMETRY_CONFIG_DIR: path.join(base, 'config'), TELEMETRY_STATE_DIR: path.join(base, 'state') };
  const ok = await install(['--prefix', path.join(base, 'prefix')], env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /non-loopback host/, 'the broken configuration is visible');
  const notADir = path.join(base, 'file');
  writeFileSync(notADir, '');
  const failed = await install(['--prefix', notADir], env);
  assert.equal(failed.code, 1, failed.stderr);
});

test('without node on PATH the installer installs, says so in one line, and exits 0', async (t) => {
  const server = await endpoint(t);
  const { base, env } = telemetryEnv(t, server);
  const prefix = path.join(base, 'prefix');
  const result = await install(['--prefix', prefix], { ...env, PATH: pathWithoutNode(t) });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /^example-daemon: node not found on PATH; the anonymous install report is skipped\n$/);
  assert.ok(existsSync(path.join(prefix, 'lib/example-daemon/anonymous-statistics.js')));
  // No node ran, so nothing can arrive later.
  assert.equal(server.requests.length, 0);
});

test('the installer refuses an unknown option with exit 2, installing and sending nothing', async (t) => {
  const server = await endpoint(t);
  const { base, env } = telemetryEnv(t, server);
  const result = await install(['--prefix', path.join(base, 'prefix'), '--bogus'], env);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^install\.sh: unknown option --bogus \(usage: sh install\.sh .*\)\n$/);
  assert.deepEqual(readdirSync(base), []);
  assert.equal(server.requests.length, 0);
});

// ---------------------------------------------------------------------------------------------
// scripts/systemd (test/field/nspawn/ runs it under a real systemd)

/** The drop-in's ExecStartPost= / ExecStopPost= command lines, with the installed paths moved to this checkout. */
function dropInCommands(): Record<'ExecStartPost' | 'ExecStopPost', string> {
  const lines = readFileSync(DROP_IN, 'utf8').split('\n');
  const found: Record<string, string[]> = {};
  for (const line of lines) {
    const match = /^(ExecStartPost|ExecStopPost)=(.*)$/.exec(line);
    if (match) (found[match[1]] ??= []).push(match[2]);
  }
  const commands = {} as Record<'ExecStartPost' | 'ExecStopPost', string>;
  for (const key of ['ExecStartPost', 'ExecStopPost'] as const) {
    assert.equal(found[key]?.length, 1, `one ${key}= line`);
    const line = found[key][0];
    assert.ok(line.startsWith('-'), `${key}: a failure must never fail the unit`);
    // systemd expands $ and % and parses quotes its own way; without them both read the line alike.
    assert.doesNotMatch(line, /[$%'"\\]/, `${key} must read the same to systemd and sh`);
    if (key === 'ExecStartPost') assert.match(line, / start --background$/, 'the unit is up at once; the event is on disk before the sender starts');
    // systemd signals what is left in the unit's cgroup as soon as ExecStopPost= returns.
    else assert.doesNotMatch(line, /--background/, 'a detached stop sender would be killed with the unit');
    const command = line
      .slice(1)
      .replaceAll(`${INSTALLED_DIR}/anonymous-statistics.js`, BUNDLE)
      .replaceAll(`${INSTALLED_DIR}/stop-exit-code.sh`, STOP_HELPER);
    assert.ok(command.includes(BUNDLE) && !command.includes(INSTALLED_DIR), `${key} runs the installed file: ${line}`);
    commands[key] = command;
  }
  return commands;
}

test("the drop-in gives the unit's user the state dir the tool defaults to", () => {
  const settings = readFileSync(DROP_IN, 'utf8').split('\n').filter((line) => /^StateDirectory/.test(line));
  const vendor = JSON.parse(readFileSync(path.join(PROJECT_DIR, 'vendor.json'), 'utf8')) as { stateDir: string };
  // StateDirectory= names a dir below /var/lib, owned by User= and chowned to it at each start.
  assert.deepEqual(settings, [`StateDirectory=${path.relative('/var/lib', vendor.stateDir)}`]);
});

const STOPS: [Record<string, string>, number][] = [
  [{ SERVICE_RESULT: 'success', EXIT_CODE: 'exited', EXIT_STATUS: '0' }, 0],
  [{ SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: '3' }, 3],
  [{ SERVICE_RESULT: 'signal', EXIT_CODE: 'killed', EXIT_STATUS: 'KILL' }, 137],
  [{ SERVICE_RESULT: 'core-dump', EXIT_CODE: 'dumped', EXIT_STATUS: 'SEGV' }, 139],
  [{ SERVICE_RESULT: 'success', EXIT_CODE: 'killed', EXIT_STATUS: 'TERM' }, 0],
];

test('the systemd drop-in, run as written, reports start and the stop with the unit exit code', async (t) => {
  const commands = dropInCommands();
  const startServer = await endpoint(t);
  const start = await run('/bin/sh', ['-c', commands.ExecStartPost], telemetryEnv(t, startServer).env);
  assert.equal(start.code, 0, start.stderr);
  assert.ok(start.ms < PROMPT_MS, `ExecStartPost= took ${Math.round(start.ms)} ms`);

  const stops = await Promise.all(
    STOPS.map(async ([unitEnv, expected]) => {
      const server = await endpoint(t);
      const result = await run('/bin/sh', ['-c', commands.ExecStopPost], { ...telemetryEnv(t, server).env, ...unitEnv });
      return { unitEnv, expected, server, result };
    }),
  );

  const started = await eventsArriving(startServer, 1);
  assert.deepEqual(started.map((e) => e.event), ['start']);
  for (const { unitEnv, expected, server, result } of stops) {
    const name = `${unitEnv.SERVICE_RESULT}/${unitEnv.EXIT_STATUS}`;
    assert.equal(result.code, 0, `${name}: ${result.stderr}`);
    assert.ok(result.ms < PROMPT_MS, `${name}: ExecStopPost= took ${Math.round(result.ms)} ms`);
    // Sent before ExecStopPost= returned, i.e. before systemd signals what is left of the unit.
    assert.deepEqual(server.events().map((e) => [e.event, (e.properties as Record<string, unknown>).exit_code]), [['stop', expected]], name);
  }
});

test("the drop-in's stop holds the unit's stop no longer than the tool's --timeout when the endpoint never answers", async (t) => {
  const server = await endpoint(t, { kind: 'hang' });
  const budget = 800;
  const unitEnv = { SERVICE_RESULT: 'success', EXIT_CODE: 'exited', EXIT_STATUS: '0', TELEMETRY_TIMEOUT_MS: String(budget) };
  const result = await run('/bin/sh', ['-c', dropInCommands().ExecStopPost], { ...telemetryEnv(t, server).env, ...unitEnv });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(server.requests.length, 1, 'it tried');
  // Node's own start-up comes on top of the budget; a loaded CI machine gets room for it.
  assert.ok(result.ms < budget + 1500, `ExecStopPost= took ${Math.round(result.ms)} ms against a ${budget} ms budget`);
});

test('stop-exit-code.sh maps what systemd reports to one exit code', async () => {
  const cases: [Record<string, string>, string][] = [
    [{ SERVICE_RESULT: 'success', EXIT_CODE: 'exited', EXIT_STATUS: '0' }, '0'],
    [{ SERVICE_RESULT: 'success', EXIT_CODE: 'exited', EXIT_STATUS: '3' }, '0'], // SuccessExitStatus=3
    [{ SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: '3' }, '3'],
    [{ SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: '255' }, '255'],
    [{ SERVICE_RESULT: 'signal', EXIT_CODE: 'killed', EXIT_STATUS: 'KILL' }, '137'],
    [{ SERVICE_RESULT: 'signal', EXIT_CODE: 'killed', EXIT_STATUS: 'SIGTERM' }, '143'],
    [{ SERVICE_RESULT: 'watchdog', EXIT_CODE: 'dumped', EXIT_STATUS: 'ABRT' }, '134'],
    [{ SERVICE_RESULT: 'signal', EXIT_CODE: 'killed', EXIT_STATUS: 'RTMIN+3' }, '1'],
    [{ SERVICE_RESULT: 'timeout', EXIT_CODE: 'exited', EXIT_STATUS: '0' }, '1'],
    [{ SERVICE_RESULT: 'start-limit-hit' }, '1'],
    [{}, '0'], // systemd before 232, or run by hand: nothing says the daemon failed
  ];
  for (const [unitEnv, expected] of cases) {
    const result = await run('/bin/sh', [STOP_HELPER, 'echo', 'stop'], unitEnv);
    assert.deepEqual([result.code, result.stdout], [0, `stop --exit-code ${expected}\n`], JSON.stringify(unitEnv));
  }
});

// ---------------------------------------------------------------------------------------------
// scripts/sysv

test('the SysV hook, called from an init script, reports start and stop in the background', async (t) => {
  const calls: [string[], string, number | undefined][] = [
    [['start'], 'start', undefined],
    [['stop'], 'stop', 0],
    [['stop', '3'], 'stop', 3],
    [['stop', 'KILL'], 'stop', 1],
  ];
  const results = await Promise.all(
    calls.map(async ([args, event, exitCode]) => {
      const server = await endpoint(t);
      const env = { ...telemetryEnv(t, server).env, ANONYMOUS_STATISTICS_JS: BUNDLE };
      return { args, event, exitCode, server, result: await run('/bin/sh', [SYSV_HOOK, ...args], env) };
    }),
  );
  for (const { args, event, exitCode, server, result } of results) {
    assert.deepEqual([result.code, result.stdout, result.stderr], [0, '', ''], args.join(' '));
    assert.ok(result.ms < PROMPT_MS, `${args.join(' ')} took ${Math.round(result.ms)} ms`);
    const events = await eventsArriving(server, 1);
    assert.deepEqual(events.map((e) => [e.event, e.properties.exit_code]), [[event, exitCode]], args.join(' '));
  }
});

test('the SysV hook, sourced by an init script under set -eu, only defines a function that always returns 0', async (t) => {
  const server = await endpoint(t);
  const { base, env } = telemetryEnv(t, server);
  const initScript = path.join(base, 'example-daemon');
  writeFileSync(
    initScript,
    `set -eu\n. ${SYSV_HOOK}\necho sourced\nanonymous_statistics stop 5\nanonymous_statistics bogus\nanonymous_statistics stop 999999999999\necho "still running after $1"\n`,
  );
  // The init script's own $1 is "start": sourcing must not take it as a command.
  const result = await run('/bin/sh', [initScript, 'start'], { ...env, ANONYMOUS_STATISTICS_JS: BUNDLE });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'sourced\nstill running after start\n');
  const events = await eventsArriving(server, 1);
  assert.deepEqual(events.map((e) => [e.event, e.properties.exit_code]), [['stop', 5]]);
});

test('the SysV hook is silent and exits 0 without node on PATH', async (t) => {
  const result = await run('/bin/sh', [SYSV_HOOK, 'start'], { PATH: pathWithoutNode(t), TELEMETRY_ENDPOINT: 'http://127.0.0.1:9/' });
  assert.deepEqual([result.code, result.stdout, result.stderr], [0, '', '']);
});

// ---------------------------------------------------------------------------------------------
// Lint and packaging

test('npm pack ships the built file as the bin, with no runtime dependencies', () => {
  const stdout = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PROJECT_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const [pack] = JSON.parse(stdout) as { name: string; files: { path: string }[] }[];
  const files = pack.files.map((file) => file.path);
  assert.equal(pack.name, 'anonymous-statistics');
  assert.ok(files.includes('package.json'), files.join(', '));
  assert.ok(files.includes('dist/anonymous-statistics.js'), files.join(', '));
  const manifest = JSON.parse(readFileSync(path.join(PROJECT_DIR, 'package.json'), 'utf8'));
  const bins = typeof manifest.bin === 'string' ? { [manifest.name]: manifest.bin } : manifest.bin;
  assert.deepEqual(Object.values(bins ?? {}).map((target) => path.posix.normalize(String(target))), ['dist/anonymous-statistics.js']);
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies', 'bundleDependencies', 'bundledDependencies']) {
    assert.deepEqual(Object.keys(manifest[field] ?? {}), [], `${field} must be empty: the file is self-contained`);
  }
});
