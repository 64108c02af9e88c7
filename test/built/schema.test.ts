import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import { captureSchema, PROPERTIES } from '../../src/after-consent/collect/properties.ts';
import { main } from '../../src/before-consent/run.ts';
import { endpoint, fakeContext, makeRoot, PROJECT_DIR, runBundle, tempDir } from '../support/helpers.ts';

/**
 * `schema` (CONTRACT.md "The schema"), checked by a real JSON Schema validator (Ajv, draft
 * 2020-12, strict) against every event every command sends: what --dry-run prints and what a
 * receiver gets, alone and in a batch.
 */

const EXECUTION_ID = '00000000-0000-4000-8000-000000000001';
const ROOT = path.join(PROJECT_DIR, 'test/fixtures/roots/combo-docker-aws-host-os/root');

/** Every command, with all its options and with only the required ones, in the legacy forms too. */
export const EVERY_CALL = [
  ['start'],
  ['stop'],
  ['stop', '--exit-code', '1'],
  ['fatal', '--process', 'p', '--thread', 't'],
  ['fatal', '--process', 'p', '--thread', 't', '--function', 'f', '--file', 'x.c', '--line', '1', '--message', 'm'],
  ['cloud-connect-fail', '--code', 'C'],
  ['cloud-connect-fail', '--code', 'C', '--code', 'D', '--message', 'm'],
  ['cloud-deps-fail', '--dependency', 'd'],
  ['cloud-unavailable', '--reason', 'r'],
  ['install', '--result', 'success'],
  ['install', '--result', 'failure', '--code', '0'],
  ['command-start', '--name', 'converge'],
  ['command-start', '--name', 'converge', '--option', 'dry-run', '--env-option', 'WERF_REPO'],
  ['command-end', '--execution-id', EXECUTION_ID, '--exit-code', '0'],
  ['command-action', '--execution-id', EXECUTION_ID, '--action', 'upload'],
  ['START'],
  ['EXIT', 'ERROR'],
  ['FATAL', 'netdata:MAIN', 'out of memory'],
  ['ACLK_CONN_FAIL', '404', 'not found'],
];

function validator() {
  // strictRequired off: each event's `required` names properties defined once, at the top, not beside it.
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  return ajv.compile(captureSchema('example-daemon'));
}

function assertValid(validate: ReturnType<typeof validator>, event: unknown, what: string): void {
  assert.ok(validate(event), `${what}: ${JSON.stringify(validate.errors)}\n${JSON.stringify(event)}`);
}

test('the schema is one valid draft 2020-12 document: every property typed and described, nothing else allowed', () => {
  const schema = captureSchema('example-daemon') as any;
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(schema.additionalProperties, false);
  assert.equal(schema.properties.properties.additionalProperties, false);
  const properties = Object.entries(schema.properties.properties.properties) as [string, any][];
  assert.deepEqual(properties.map(([name]) => name), Object.keys(PROPERTIES));
  for (const [name, property] of properties) {
    assert.ok(typeof property.type === 'string', `${name} has a type`);
    assert.match(property.description, /\S.*\. Why: \S.*\.$/, `${name} says what it is and why it is collected`);
  }
  assert.equal(schema.properties.properties.properties.schema_version.minimum, 2);
  // Ajv in strict mode refuses unknown keywords and malformed schemas.
  validator();
});

test('every event --dry-run prints, for every command, is valid against the schema', async (t) => {
  const validate = validator();
  const dirs = ['--state-dir', tempDir(t), '--config-dir', tempDir(t), '--root', ROOT, '--endpoint', 'http://127.0.0.1:9', '--product-version', 'v1.44.0'];
  const dryRuns = async () => {
    for (const call of EVERY_CALL) {
      const ctx = fakeContext();
      assert.equal(await main([...call, '--dry-run', ...dirs], ctx), 0, ctx.err.join(''));
      assertValid(validate, JSON.parse(ctx.out.join('')), call.join(' '));
    }
  };
  // Before anything is on record (no run, no execution), then with a run and an execution on record.
  await dryRuns();
  for (const call of [['start'], ['command-start', '--name', 'converge']]) assert.equal(await main([...call, ...dirs], fakeContext({ elapsedMs: () => Infinity })), 0);
  await dryRuns();
});

test('every event a receiver gets, alone or in a batch, is valid against the schema', async (t) => {
  const validate = validator();
  const server = await endpoint(t);
  const root = makeRoot(t, { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'etc/machine-id': '0f1e2d3c4b5a69788796a5b4c3d2e1f0\n' });
  const args = ['--state-dir', tempDir(t), '--config-dir', tempDir(t), '--root', root, '--endpoint', server.url];
  // The first run shows the notice and holds its event: the ones after send alone, then the held one in a batch.
  assert.equal((await runBundle(['start', '--show-notice', ...args])).code, 0);
  for (const call of EVERY_CALL) {
    const result = await runBundle([...call, ...args]);
    assert.equal(result.code, 0, result.stderr);
  }
  const paths = new Set(server.requests.map((request) => request.path));
  assert.ok(paths.has('/capture/') && paths.has('/batch/'), `both paths were used: ${[...paths]}`);
  const events = server.events();
  assert.equal(events.length, EVERY_CALL.length + 1);
  for (const request of server.requests) {
    const body = JSON.parse(request.body);
    // A batch's events carry no key of their own: the envelope does, as a single capture body does.
    for (const event of request.path.startsWith('/batch') ? body.batch.map((e: object) => ({ api_key: body.api_key, ...e })) : [body]) assertValid(validate, event, `${request.path} ${event.event}`);
  }
});

test('the schema refuses what no event carries: an unlisted property, a missing one, another event\'s', async (t) => {
  const validate = validator();
  const ctx = fakeContext();
  assert.equal(await main(['stop', '--exit-code', '3', '--dry-run', '--state-dir', tempDir(t), '--config-dir', tempDir(t), '--root', ROOT], ctx), 0);
  const stop = JSON.parse(ctx.out.join(''));
  assertValid(validate, stop, 'stop');
  const variants: [string, (event: any) => void][] = [
    ['an unlisted property', (event) => (event.properties.hostname = 'box')],
    ['a missing common property', (event) => delete event.properties.system_architecture],
    ['a missing property the event always carries', (event) => delete event.properties.exit_code],
    ["another event's property", (event) => (event.properties.fatal_line = 1)],
    ['a wrong type', (event) => (event.properties.exit_code = '3')],
    ['a person profile', (event) => (event.properties.$process_person_profile = true)],
    ['an unlisted top-level field', (event) => (event.token = 'phc_x')],
  ];
  for (const [what, change] of variants) {
    const event = structuredClone(stop);
    change(event);
    assert.equal(validate(event), false, what);
  }
});

test('the schema command prints the document, in the build\'s product name, for anyone to read', async () => {
  const result = await runBundle(['schema']);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), captureSchema('example-daemon'));
  assert.equal(result.stderr, '');
});
