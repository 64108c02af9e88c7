import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { readConsent } from '../../src/dashboard/consent.ts';
import { BUNDLE, listTree, makeRoot, PROJECT_DIR, runBundle, tempDir, trapViolations } from '../support/helpers.ts';

/** `consent`, the built file's answer to a web dashboard (CONTRACT.md "Dashboard channel"). */

const MACHINE_ID = '0f1e2d3c4b5a69788796a5b4c3d2e1f0\n';

function setUp(t: TestContext, files: Record<string, string> = { 'etc/machine-id': MACHINE_ID }) {
  const base = tempDir(t);
  const config = path.join(base, 'config');
  const state = path.join(base, 'state');
  mkdirSync(config);
  const args = ['--config-dir', config, '--state-dir', state, '--root', makeRoot(t, files), '--endpoint', 'http://127.0.0.1:9', '--product-version', 'v1.44.0'];
  return { base, config, state, args };
}

async function consent(args: string[], env: Record<string, string> = {}) {
  const result = await runBundle(['consent', ...args], env);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  return result.stdout;
}

async function dryRunDistinctId(args: string[]): Promise<string> {
  const result = await runBundle(['start', '--dry-run', ...args]);
  return JSON.parse(result.stdout).properties.distinct_id;
}

test('consent prints one JSON document: the id, endpoint, key and names the backend\'s own events carry', async (t) => {
  const { args } = setUp(t);
  // The id's salt is kept by the first event (port 9 refuses: it waits in the outbox).
  assert.equal((await runBundle(['start', ...args])).code, 0);
  const stdout = await consent(args);
  assert.ok(stdout.endsWith('}\n') && !stdout.slice(0, -1).includes('\n'), 'one line');
  const backend = (await runBundle(['start', '--dry-run', ...args])).stdout;
  const { distinct_id, schema_version } = JSON.parse(backend).properties;
  assert.deepEqual(JSON.parse(stdout), {
    enabled: true,
    distinct_id,
    endpoint: 'http://127.0.0.1:9/capture/',
    api_key: 'phc_example_replace_at_build_time',
    product: 'example-daemon',
    product_version: 'v1.44.0',
    schema_version,
  });
  assert.deepEqual(readConsent(stdout), { consent: JSON.parse(stdout) }, 'the browser module takes exactly what the command prints');
  assert.equal(trapViolations(), '');
});

test('consent writes nothing, not even the derived-id cache or a random id', async (t) => {
  const withMachineId = setUp(t);
  await consent(withMachineId.args);
  assert.deepEqual(listTree(withMachineId.base), []);

  const withoutMachineId = setUp(t, { 'etc/os-release': 'ID=debian\n' });
  const first = JSON.parse(await consent(withoutMachineId.args)).distinct_id;
  assert.deepEqual(listTree(withoutMachineId.base), [], 'no state dir created for a random id');
  // Once an event has kept a random id, the dashboard gets that same id.
  assert.equal((await runBundle(['start', ...withoutMachineId.args])).code, 0);
  const kept = await dryRunDistinctId(withoutMachineId.args);
  assert.notEqual(kept, first);
  assert.equal(JSON.parse(await consent(withoutMachineId.args)).distinct_id, kept);
});

test('any opt-out gives exactly {"enabled":false}, having read nothing but its settings and the marker it looked for', async (t) => {
  const { config, args } = setUp(t);
  const record = path.join(tempDir(t), 'fs-record.txt');
  const recorder = path.join(PROJECT_DIR, 'test/support/fs-recorder.cjs');
  const reads = async (extra: string[], env: Record<string, string>) => {
    writeFileSync(record, '');
    const stdout = await consent([...args, ...extra], { ...env, FS_RECORD: record, NODE_OPTIONS: `--require ${path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs')} --require ${recorder}` });
    assert.equal(stdout, '{"enabled":false}\n');
    // The install-time settings beside the tool say where the marker is: every run reads them.
    const installSettings = path.join(path.dirname(BUNDLE), 'anonymous-statistics.json');
    return readFileSync(record, 'utf8').split('\n').filter((line) => line !== '' && !line.endsWith(BUNDLE) && !line.endsWith(installSettings));
  };
  assert.deepEqual(await reads(['--disable-telemetry'], {}), []);
  assert.deepEqual(await reads([], { DISABLE_TELEMETRY: '1' }), []);
  assert.deepEqual(await reads([], { DO_NOT_TRACK: '0' }), []);
  const marker = path.join(config, '.opt-out-from-anonymous-statistics');
  writeFileSync(marker, '');
  assert.deepEqual(await reads([], {}), [`existsSync ${marker}`]);
});

test('consent takes the settings every command takes, and nothing an event takes', async (t) => {
  const { args } = setUp(t);
  const other = JSON.parse(await consent([...args, '--endpoint', 'https://telemetry.example.com', '--api-key', 'phc_other']));
  assert.deepEqual([other.endpoint, other.api_key], ['https://telemetry.example.com/capture/', 'phc_other']);
  for (const option of ['--dry-run', '--background', '--json']) {
    const result = await runBundle(['consent', ...args, option]);
    assert.equal(result.code, 2, option);
    assert.match(result.stderr, new RegExp(`option ${option} does not apply to "consent"`));
  }
  const badEndpoint = await runBundle(['consent', ...args, '--endpoint', 'http://telemetry.example.com']);
  assert.equal(badEndpoint.code, 2);
  assert.equal(badEndpoint.stdout, '');
});

test('the browser module reads a consent document strictly: only a whole, well-formed yes is consent', () => {
  const valid = { enabled: true, distinct_id: '5f0b7d5e-8a4c-4d3e-9f21-0a1b2c3d4e5f', endpoint: 'https://us.i.posthog.com/capture/', api_key: 'phc_x', product: 'p', product_version: '1', schema_version: 1 };
  assert.deepEqual(readConsent({ ...valid, extra: 'dropped' }), { consent: valid }, 'unknown fields are not carried along');
  assert.deepEqual(readConsent({ enabled: false }), { refusal: 'telemetry is off on the host (consent.enabled is not true)' });
  assert.deepEqual(readConsent(undefined), { refusal: 'no consent document' });
  assert.match((readConsent({ ...valid, endpoint: 'http://192.168.1.5/capture/' }) as { refusal: string }).refusal, /http: for a non-loopback host/);
  assert.match((readConsent({ ...valid, api_key: 'x'.repeat(1001) }) as { refusal: string }).refusal, /api_key/);
});

test('a build whose sink is not PostHog hands the dashboard no consent: its module speaks PostHog capture only', async (t) => {
  const { args } = setUp(t);
  for (const sink of ['otlp', 'posthog']) {
    const result = await runBundle(['consent', ...args, '--sink', sink]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).enabled, sink === 'posthog', sink);
    if (sink === 'otlp') assert.match(result.stderr, /sends to PostHog only; this build's sink is otlp/);
  }
});
