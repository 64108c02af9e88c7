import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BUNDLE, endpoint, listTree, makeRoot, PROJECT_DIR, runBundle, tempDir, trapViolations } from '../support/helpers.ts';

/** The built file, run as an install script or a service hook runs it. */

const MACHINE_ROOT = {
  'etc/os-release': 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n',
  'etc/machine-id': '0f1e2d3c4b5a69788796a5b4c3d2e1f0\n',
  'proc/sys/kernel/ostype': 'Linux\n',
  'proc/sys/kernel/osrelease': '6.1.0-18-amd64\n',
  'proc/cpuinfo': 'vendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep hypervisor\n',
  'sys/class/dmi/id/sys_vendor': 'QEMU\n',
  'sys/class/dmi/id/product_name': 'Standard PC (Q35 + ICH9, 2009)\n',
  'proc/1/cgroup': '0::/init.scope\n',
};

const REQUIRED_PROPERTIES = [
  'distinct_id', '$ip', 'product', 'product_version', 'product_version_semver', 'schema_version',
  'host_os_name', 'host_os_id', 'host_os_id_like', 'host_os_version', 'host_os_version_id', 'host_os_detection',
  'container_os_name', 'container_os_id', 'container_os_id_like', 'container_os_version', 'container_os_version_id', 'container_os_detection',
  'system_kernel_name', 'system_kernel_version', 'system_architecture', 'system_virtualization', 'system_virt_detection',
  'system_container', 'system_container_detection', 'host_is_k8s_node',
];

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

function dirs(t: Parameters<typeof tempDir>[0]) {
  const base = tempDir(t);
  const config = path.join(base, 'config');
  const state = path.join(base, 'state');
  mkdirSync(config);
  return { base, config, state, log: path.join(base, 'sent.log') };
}

function baseArgs(t: Parameters<typeof tempDir>[0], url: string) {
  const d = dirs(t);
  const root = makeRoot(t, MACHINE_ROOT);
  return { d, args: ['--endpoint', url, '--config-dir', d.config, '--state-dir', d.state, '--root', root, '--log-file', d.log] };
}

test('start reaches the endpoint as one PostHog capture body with every contract property', async (t) => {
  const server = await endpoint(t);
  const { d, args } = baseArgs(t, server.url);
  const result = await runBundle(['start', '--product-version', 'v2.3.1-44-gdeadbee', ...args]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, '');
  assert.equal(server.requests.length, 1);
  const [request] = server.requests;
  assert.equal(request.method, 'POST');
  assert.equal(request.path, '/capture/');
  assert.equal(request.status, 200);
  const body = JSON.parse(request.body);
  assert.deepEqual(Object.keys(body), ['api_key', 'event', 'uuid', 'timestamp', 'properties']);
  assert.equal(body.event, 'start');
  assert.match(body.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(Math.abs(Date.parse(body.timestamp) - Date.now()) < 60_000);
  for (const key of REQUIRED_PROPERTIES) assert.ok(key in body.properties, `missing ${key}`);
  assert.equal(body.properties.$ip, '127.0.0.1');
  assert.equal(body.properties.product_version, 'v2.3.1-44-gdeadbee');
  assert.equal(body.properties.product_version_semver, '2.3.1-44-gdeadbee');
  assert.equal(body.properties.host_os_id, 'debian');
  assert.equal(body.properties.system_virtualization, 'qemu');
  assert.equal(body.properties.system_container, 'none');
  assert.equal(body.properties.container_os_name, 'none');
  assert.ok(!JSON.stringify(body).includes('0f1e2d3c4b5a69788796a5b4c3d2e1f0'), 'raw machine id leaked');
  assert.equal(readFileSync(d.log, 'utf8'), `${request.body}\n`, 'the log holds exactly the bytes sent');
});

test('each event command sends its own properties with the contract types', async (t) => {
  const server = await endpoint(t);
  const { args } = baseArgs(t, server.url);
  const commands: [string[], Record<string, unknown>][] = [
    [['stop', '--exit-code', '143'], { exit_code: 143 }],
    [['fatal', '--process', 'mydaemon', '--thread', 'WEB[3]', '--function', 'rrd_init', '--file', 'rrdengine.c', '--line', '412', '--message', 'out of memory'],
      { fatal_process: 'mydaemon', fatal_thread: 'WEB[3]', fatal_function: 'rrd_init', fatal_file: 'rrdengine.c', fatal_line: 412, fatal_message: 'out of memory' }],
    [['cloud-connect-fail', '--code', 'ECONNREFUSED', '--code', 'HTTP_503', '--message', 'gave up'], { cloud_error_codes: ['ECONNREFUSED', 'HTTP_503'], cloud_message: 'gave up' }],
    [['cloud-deps-fail', '--dependency', 'libprotobuf', '--dependency', 'openssl'], { cloud_failed_dependencies: ['libprotobuf', 'openssl'] }],
    [['cloud-unavailable', '--reason', 'disabled in config'], { cloud_unavailable_reason: 'disabled in config' }],
    [['install', '--result', 'failure', '--code', 'E42'], { install_result: 'failure', install_code: 'E42' }],
    [['EXIT', 'ERROR'], { exit_code: 1 }],
  ];
  for (const [command, expected] of commands) {
    const result = await runBundle([...command, ...args]);
    assert.equal(result.code, 0, `${command.join(' ')}: ${result.stderr}`);
    const body = JSON.parse(server.requests.at(-1)?.body ?? '{}');
    assert.equal(body.event, command[0] === 'EXIT' ? 'stop' : command[0]);
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(body.properties[key], value, `${command[0]} ${key}`);
  }
  assert.equal(server.requests.length, commands.length);
  assert.ok(server.requests.every((r) => r.status === 200), 'the endpoint accepted every body');
});

const OPT_OUTS: [string, string[], Record<string, string>, boolean][] = [
  ['--disable-telemetry', ['--disable-telemetry'], {}, false],
  ['DISABLE_TELEMETRY=0', [], { DISABLE_TELEMETRY: '0' }, false],
  ['DO_NOT_TRACK=1', [], { DO_NOT_TRACK: '1' }, false],
  ['the marker file', [], {}, true],
];

for (const [name, flags, env, marker] of OPT_OUTS) {
  test(`sends nothing and writes nothing when opted out by ${name}`, async (t) => {
    const server = await endpoint(t);
    const { d, args } = baseArgs(t, server.url);
    if (marker) writeFileSync(path.join(d.config, '.opt-out-from-anonymous-statistics'), '');
    const before = listTree(d.base);
    for (const command of [['start'], ['fatal', '--process', 'p', '--thread', 't'], ['FATAL', 'p:t', 'data']]) {
      const result = await runBundle([...command, ...flags, ...args], env);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, '');
    }
    assert.equal(server.requests.length, 0);
    assert.deepEqual(listTree(d.base), before);
    assert.equal(existsSync(d.state), false);
  });
}

test('--dry-run prints the exact payload, sends nothing, writes nothing, and says so', async (t) => {
  const server = await endpoint(t);
  const { d, args } = baseArgs(t, server.url);
  const result = await runBundle(['stop', '--exit-code', '2', '--dry-run', ...args]);
  assert.equal(result.code, 0);
  const payload = JSON.parse(result.stdout);
  assert.equal(result.stdout, `${JSON.stringify(payload)}\n`, 'one JSON document on one line');
  assert.equal(payload.event, 'stop');
  assert.equal(payload.properties.exit_code, 2);
  assert.match(result.stderr, /dry run: nothing was sent/);
  assert.equal(server.requests.length, 0);
  assert.deepEqual(listTree(d.base), []);
});

test('--dry-run still shows the payload when opted out, and names the opt-out', async (t) => {
  const server = await endpoint(t);
  const { d, args } = baseArgs(t, server.url);
  const result = await runBundle(['start', '--dry-run', ...args], { DO_NOT_TRACK: '0' });
  assert.equal(result.code, 0);
  assert.equal(JSON.parse(result.stdout).event, 'start');
  assert.match(result.stderr, /telemetry is off \(DO_NOT_TRACK="0" is set.*\); nothing would be sent/);
  assert.equal(server.requests.length, 0);
  assert.deepEqual(listTree(d.base), []);
});

const BAD_INPUT: [string[], RegExp][] = [
  [['launch'], /unknown command "launch"/],
  [['start', '--bogus'], /--bogus/],
  [['fatal', '--process', 'p'], /fatal needs --thread/],
  [['fatal', '--process', 'p', '--thread', 't', '--line', 'abc'], /--line .*"abc"/],
  [['stop', '--exit-code', 'x'], /--exit-code .*"x"/],
  [['start', '--endpoint', 'http://[::1'], /--endpoint is not a valid URL/],
  [['start', '--endpoint', 'http://203.0.113.7:8080/capture/'], /non-loopback host "203.0.113.7"/],
  [['start', '--endpoint', 'http://telemetry.example.com/'], /non-loopback host "telemetry.example.com"/],
  [['start', '--timeout=-5'], /--timeout must be a whole number/],
  [['install', '--result', 'maybe'], /--result must be "success" or "failure"/],
];

for (const [command, message] of BAD_INPUT) {
  test(`bad input "${command.join(' ')}" exits 2 with one line, sending and writing nothing`, async (t) => {
    const server = await endpoint(t);
    const d = dirs(t);
    const result = await runBundle([...command, '--config-dir', d.config, '--state-dir', d.state, '--log-file', d.log], {
      TELEMETRY_ENDPOINT: server.url,
    });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
    assert.equal(server.requests.length, 0);
    assert.deepEqual(listTree(d.base), []);
  });
}

test('a non-loopback http: URL is refused before any lookup or connection is tried', async (t) => {
  const d = dirs(t);
  const result = await runBundle(['start', '--endpoint', 'http://198.51.100.20/', '--config-dir', d.config, '--state-dir', d.state]);
  assert.equal(result.code, 2);
  // The trap records every attempt to connect to or look up a non-loopback address.
  assert.equal(trapViolations(), '');
});

test('a 120 KB message is cut to the documented size, not rejected', async (t) => {
  const server = await endpoint(t);
  const { args } = baseArgs(t, server.url);
  const result = await runBundle(['fatal', '--process', 'p', '--thread', 't', '--message', 'm'.repeat(120 * 1024), ...args]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(server.requests[0].body).properties.fatal_message, 'm'.repeat(1000));
});

test('nothing in a payload names the host, the user, an address or a home path', async (t) => {
  const server = await endpoint(t);
  const d = dirs(t);
  const secrets = {
    hostname: 'zq-hostname-7731',
    user: 'zq-user-5519',
    home: '/home/zq-user-5519',
    mac: '52:54:00:zq:77:31',
    ip: '198.18.77.31',
    email: 'zq-user-5519@example.org',
  };
  const root = makeRoot(t, {
    ...MACHINE_ROOT,
    'etc/hostname': `${secrets.hostname}\n`,
    'etc/hosts': `${secrets.ip} ${secrets.hostname}\n`,
    'proc/sys/kernel/hostname': `${secrets.hostname}\n`,
    'sys/class/net/eth0/address': `${secrets.mac}\n`,
    'etc/passwd': `${secrets.user}:x:1000:1000:${secrets.email}:${secrets.home}:/bin/sh\n`,
    'proc/1/environ': `HOME=${secrets.home}\0USER=${secrets.user}\0HOSTNAME=${secrets.hostname}\0`,
  });
  const env = { HOME: secrets.home, USER: secrets.user, LOGNAME: secrets.user, HOSTNAME: secrets.hostname, MAIL: secrets.email };
  for (const command of [['start'], ['stop'], ['install', '--result', 'success']]) {
    const result = await runBundle([...command, '--endpoint', server.url, '--root', root, '--config-dir', d.config, '--state-dir', d.state], env);
    assert.equal(result.code, 0, result.stderr);
  }
  assert.equal(server.requests.length, 3);
  for (const request of server.requests) {
    for (const [what, secret] of Object.entries(secrets)) assert.ok(!request.body.includes(secret), `${what} leaked: ${request.body}`);
    assert.ok(!request.body.includes(d.base), 'a local path leaked');
  }
});

test('disable and enable manage the marker file, idempotently, and say what stays in force', async (t) => {
  const d = dirs(t);
  const marker = path.join(d.config, '.opt-out-from-anonymous-statistics');
  for (let i = 0; i < 2; i++) {
    const result = await runBundle(['disable', '--config-dir', d.config, '--state-dir', d.state]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(marker));
  }
  const status = JSON.parse((await runBundle(['status', '--json', '--config-dir', d.config, '--state-dir', d.state])).stdout);
  assert.deepEqual([status.telemetry, status.enabled, status.opt_outs[0].mechanism], ['off', false, 'marker']);
  for (let i = 0; i < 2; i++) {
    const result = await runBundle(['enable', '--config-dir', d.config], { DO_NOT_TRACK: '1' });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(existsSync(marker), false);
    assert.match(result.stdout, i === 0 ? new RegExp(`^removed ${marker}\n`) : new RegExp(`^there was no ${marker} to remove\n`));
    assert.match(result.stdout, /telemetry stays off: DO_NOT_TRACK="1" is set/);
  }
  const again = await runBundle(['enable', '--config-dir', d.config]);
  assert.deepEqual([again.code, again.stdout], [0, `telemetry was already on: there is no ${marker}\n`], 'enable claims no removal it did not make');
  const on = JSON.parse((await runBundle(['status', '--json', '--config-dir', d.config, '--state-dir', d.state])).stdout);
  assert.deepEqual([on.telemetry, on.enabled, on.opt_outs], ['on', true, []]);
});

test('disable where the config dir cannot be created exits 1 with one line naming the file', async (t) => {
  const d = dirs(t);
  writeFileSync(path.join(d.base, 'not-a-dir'), '');
  const result = await runBundle(['disable', '--config-dir', path.join(d.base, 'not-a-dir', 'config')]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^anonymous-statistics: cannot create .*not-a-dir\/config\/\.opt-out-from-anonymous-statistics: ENOTDIR\n$/);
});

test('an opted-out run reads nothing: no system file, no state; at most the installer\'s settings and the marker they point to', async (t) => {
  const server = await endpoint(t);
  const { d, args } = baseArgs(t, server.url);
  const record = path.join(d.base, 'fs-record.txt');
  const recorder = path.join(PROJECT_DIR, 'test/support/fs-recorder.cjs');
  const seen = async (env: Record<string, string>) => {
    writeFileSync(record, '');
    const result = await runBundle(['fatal', '--process', 'p', '--thread', 't', ...args], { ...env, FS_RECORD: record, NODE_OPTIONS: `--require ${path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs')} --require ${recorder}` });
    assert.equal(result.code, 0, result.stderr);
    return readFileSync(record, 'utf8').split('\n').filter((line) => line !== '' && !line.endsWith(BUNDLE));
  };
  assert.deepEqual(await seen({ DO_NOT_TRACK: '1' }), []);
  writeFileSync(path.join(d.config, '.opt-out-from-anonymous-statistics'), '');
  // The marker's place may be the installer's choice: its settings file beside the copy is looked for first.
  assert.deepEqual(await seen({}), [`openSync ${path.join(path.dirname(BUNDLE), 'anonymous-statistics.json')}`, `existsSync ${path.join(d.config, '.opt-out-from-anonymous-statistics')}`]);
  assert.equal(server.requests.length, 0);
  // The recorder does see a real run's reads, so the empty list above means something.
  rmSync(path.join(d.config, '.opt-out-from-anonymous-statistics'));
  assert.ok((await seen({})).some((line) => line.includes('os-release')));
});

test('a start or stop carries no free text, so it looks up no host or user name to scrub', async (t) => {
  const server = await endpoint(t);
  const { d, args } = baseArgs(t, server.url);
  const record = path.join(d.base, 'fs-record.txt');
  const recorder = path.join(PROJECT_DIR, 'test/support/fs-recorder.cjs');
  const reads = async (call: string[]) => {
    writeFileSync(record, '');
    const result = await runBundle([...call, ...args], { FS_RECORD: record, NODE_OPTIONS: `--require ${path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs')} --require ${recorder}` });
    assert.equal(result.code, 0, result.stderr);
    return readFileSync(record, 'utf8');
  };
  for (const call of [['start'], ['stop', '--exit-code', '1']]) assert.doesNotMatch(await reads(call), /etc\/(passwd|hostname)/, call[0]);
  // The recorder does see the lookups of an event that carries text.
  assert.match(await reads(['fatal', '--process', 'p', '--thread', 't', '--message', 'm']), /etc\/passwd/);
});
