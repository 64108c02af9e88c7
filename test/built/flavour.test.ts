import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { build } from '../../scripts/build.ts';
import { startEndpoint, type Endpoint } from '../../scripts/endpoint.ts';
import { listTree, PROJECT_DIR, runBuilt, trapViolations } from '../support/helpers.ts';

/**
 * A vendor's flavour built as a vendor builds it (own command, opt-out variables and flag, a
 * loopback http: endpoint from `npm run endpoint`), then run as its users run it.
 */

const ROOT_FILES = { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'proc/sys/kernel/ostype': 'Linux\n', 'proc/sys/kernel/osrelease': '6.1.0\n' };
const TRAP = path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs');
const RECORDER = path.join(PROJECT_DIR, 'test/support/fs-recorder.cjs');

let server: Endpoint;
let work: string;
/** The flavour's built-in config and state dirs: no run below may create anything there. */
let home: string;
let flavour: string;
let root: string;

before(async () => {
  server = await startEndpoint();
  work = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-flavour-'));
  home = path.join(work, 'home');
  root = path.join(work, 'root');
  for (const [rel, content] of Object.entries(ROOT_FILES)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), content);
  }
  mkdirSync(home);
  const vendorFile = path.join(work, 'acme.json');
  writeFileSync(
    vendorFile,
    JSON.stringify({
      product: 'acme-cli',
      endpoint: server.url,
      apiKey: 'phc_acme',
      configDir: path.join(home, 'etc/acme'),
      stateDir: path.join(home, 'var/lib/acme'),
      commandName: 'acme telemetry',
      optOutEnv: { ACME_NO_ANALYTICS: 'any', ACME_TELEMETRY: '0' },
      optOutFlag: '--disable-analytics',
    }),
  );
  flavour = await build({ vendorFile, outfile: path.join(work, 'acme-telemetry.js') });
});

after(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
  assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address');
});

const run = (args: string[], env: Record<string, string> = {}) => runBuilt(flavour, args, env);

test('a shell installer reads the product, dirs, command and opt-out names from the first lines with sed', async () => {
  const field = (name: string) =>
    new Promise<string>((resolve, reject) =>
      execFile('sed', ['-n', `s|^// ${name}: *||p;/^[^#/]/q`, flavour], (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
  assert.equal(await field('product'), 'acme-cli\n');
  assert.equal(await field('config-dir'), `${path.join(home, 'etc/acme')}\n`);
  assert.equal(await field('state-dir'), `${path.join(home, 'var/lib/acme')}\n`);
  assert.equal(await field('command'), 'acme telemetry\n');
  assert.equal(await field('opt-out-env'), 'ACME_NO_ANALYTICS=any ACME_TELEMETRY=0\n');
  assert.equal(await field('opt-out-flag'), '--disable-analytics\n');
  assert.ok(readFileSync(flavour, 'utf8').startsWith('#!/usr/bin/env node\n// product: acme-cli\n'));
});

test('the flavour names itself by its command in --help and in usage errors', async () => {
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: acme telemetry <command> \[options\]\n/);
  assert.match(help.stdout, /^ {2}--disable-analytics +the same as --disable-telemetry$/m);
  assert.match(help.stdout, /also ACME_NO_ANALYTICS set to anything/);
  assert.match(help.stdout, /also ACME_TELEMETRY set to 0, false, off or no/);
  assert.match(help.stdout, /^ {2}acme telemetry stop --exit-code 1$/m);
  assert.match(help.stdout, /^ {2}ACME_NO_ANALYTICS=1 acme telemetry start +# sends nothing$/m);
  assert.doesNotMatch(help.stdout, /anonymous-statistics (<command>|start|stop|fatal|install)/);

  const usage = await run(['start', '--frobnicate']);
  assert.equal(usage.code, 2);
  assert.equal(usage.stderr, 'acme telemetry: unknown option --frobnicate (see acme telemetry --help)\n');
  const misplaced = await run(['start', '--line', '3']);
  assert.equal(misplaced.stderr, 'acme telemetry: option --line does not apply to "start" (see acme telemetry --help)\n');
});

test("status advises the product's own names while telemetry is on", async () => {
  const status = await run(['status', '--root', root]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^telemetry: on\n {2}to turn it off: ACME_NO_ANALYTICS=1, --disable-analytics, or `acme telemetry disable` \(creates .*\/etc\/acme\/\.opt-out-from-anonymous-statistics\)\n/);
});

/** Every way the flavour's own names turn it off, with what status must say decided. */
const OPT_OUTS: { args?: string[]; env?: Record<string, string>; mechanism: string; detail: string }[] = [
  { env: { ACME_NO_ANALYTICS: '1' }, mechanism: 'ACME_NO_ANALYTICS', detail: 'ACME_NO_ANALYTICS="1" is set (any non-empty value opts out, even 0)' },
  { env: { ACME_NO_ANALYTICS: '0' }, mechanism: 'ACME_NO_ANALYTICS', detail: 'ACME_NO_ANALYTICS="0" is set (any non-empty value opts out, even 0)' },
  ...['0', 'false', 'off', 'no', ' OFF ', 'False'].map((value) => ({
    env: { ACME_TELEMETRY: value },
    mechanism: 'ACME_TELEMETRY',
    detail: `ACME_TELEMETRY=${JSON.stringify(value)} is set (0, false, off or no opts out)`,
  })),
  { args: ['--disable-analytics'], mechanism: 'flag', detail: '--disable-analytics was given' },
];

test("each of the flavour's own opt-outs holds before anything is read: no read, no file, no request", async () => {
  const record = path.join(work, 'fs-record.txt');
  for (const { args = [], env = {}, detail } of OPT_OUTS) {
    writeFileSync(record, '');
    // In the foreground, so a send or a write would have happened before the exit we wait for.
    const result = await run(['fatal', '--process', 'p', '--thread', 't', ...args], { ...env, FS_RECORD: record, NODE_OPTIONS: `--require ${TRAP} --require ${RECORDER}` });
    assert.deepEqual([result.code, result.stdout, result.stderr], [0, '', ''], detail);
    const reads = readFileSync(record, 'utf8').split('\n').filter((line) => line !== '' && !line.endsWith(flavour));
    assert.deepEqual(reads, [], `${detail}: the opted-out run read files`);
  }
  // The recorder does see a run that goes on (a dry run, which writes nothing either).
  writeFileSync(record, '');
  await run(['start', '--dry-run', '--root', root], { ACME_TELEMETRY: '1', FS_RECORD: record, NODE_OPTIONS: `--require ${TRAP} --require ${RECORDER}` });
  assert.match(readFileSync(record, 'utf8'), /os-release/);
  assert.deepEqual(listTree(home), [], 'an opted-out run created files in the config or state dir');
  assert.equal(server.requests.length, 0);
});

test('status and --dry-run name the opt-out that decided, in text and in JSON', async () => {
  for (const { args = [], env = {}, mechanism, detail } of OPT_OUTS) {
    const json = await run(['status', '--json', '--root', root, ...args], env);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout);
    assert.deepEqual([report.telemetry, report.enabled, report.opt_outs], ['off', false, [{ mechanism, detail }]]);
    const text = await run(['status', '--root', root, ...args], env);
    assert.match(text.stdout, new RegExp(`^telemetry: off\\n {2}off because ${detail.replace(/[()]/g, '\\$&')}\\n`));
  }
  const dryRun = await run(['start', '--dry-run', '--root', root], { ACME_TELEMETRY: 'no' });
  assert.equal(JSON.parse(dryRun.stdout).properties.product, 'acme-cli');
  assert.match(dryRun.stderr, /^dry run: telemetry is off \(ACME_TELEMETRY="no" is set/);
  assert.deepEqual(listTree(home), [], 'status or a dry run created files');
});

test('a value the "0" form does not name keeps telemetry on, and the event reaches the local endpoint', async () => {
  const state = mkdtempSync(path.join(work, 'state-'));
  for (const value of ['1', 'true', 'yes', 'on', '00', '']) {
    const status = JSON.parse((await run(['status', '--json', '--root', root], { ACME_TELEMETRY: value })).stdout);
    assert.deepEqual([status.telemetry, status.opt_outs], ['on', []], `ACME_TELEMETRY=${JSON.stringify(value)}`);
  }
  const before = server.requests.length;
  const sent = await run(['start', '--root', root, '--state-dir', state], { ACME_TELEMETRY: '1' });
  assert.equal(sent.code, 0, sent.stderr);
  assert.equal(server.requests.length, before + 1);
  const body = JSON.parse(server.requests.at(-1)?.body ?? '{}');
  assert.deepEqual([body.api_key, body.properties?.product], ['phc_acme', 'acme-cli']);
});

test("enable says which of the product's own variables keeps telemetry off", async () => {
  const config = mkdtempSync(path.join(work, 'config-'));
  const disabled = await run(['disable', '--config-dir', config, '--state-dir', mkdtempSync(path.join(work, 'state-'))]);
  assert.equal(disabled.code, 0, disabled.stderr);
  const result = await run(['enable', '--config-dir', config], { ACME_TELEMETRY: 'off' });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^removed .*\ntelemetry stays off: ACME_TELEMETRY="off" is set \(0, false, off or no opts out\)\n$/);
});
