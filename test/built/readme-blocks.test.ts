/**
 * The README's shell blocks, extracted from README.md itself and run as a reader pastes them, so
 * the manual cannot drift from the tool.
 *
 * The convention, in README.md:
 * - `<!-- test: NAME -->` on the line before a fenced `sh` block: this suite runs the block with
 *   `sh -e` from a checkout whose dist/ is the file under test, with the variables the README's
 *   "Quick start" block exports (TELEMETRY_ENDPOINT a receiver of this suite's on 127.0.0.1, a
 *   state and a config dir of the block's own), and CHECKS[NAME] says what must arrive.
 * - `<!-- not run: WHY -->` before an `sh` block that cannot run here (it runs this suite, serves
 *   until Ctrl-C, or needs a booted systemd): its `npm run` scripts and repository paths must
 *   still exist.
 * - `<!-- check: NAME -->` before a block of another language that must match a shipped file.
 * - Anything else is not an `sh` block: a synopsis is fenced `text`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { describeEvent, ownProperties, type Endpoint } from '../../scripts/endpoint.ts';
import { BUNDLE, endpoint, PROJECT_DIR, tempDir, TRAP_LOG, trapViolations } from '../support/helpers.ts';

interface Block {
  /** What the comment before it says: `test: NAME`, `not run: WHY`, `check: NAME`, or '' for none. */
  marker: string;
  language: string;
  body: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
}

const README = readFileSync(path.join(PROJECT_DIR, 'README.md'), 'utf8');

function readmeBlocks(): Block[] {
  const lines = README.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i].slice(indent));
    const before = lines.slice(0, start).reverse().find((line) => line.trim() !== '') ?? '';
    const marker = /^\s*<!-- (.*?) -->\s*$/.exec(before)?.[1] ?? '';
    blocks.push({ marker, language: open[2], body: `${body.join('\n')}\n`, line: start + 1 });
  }
  return blocks;
}

const BLOCKS = readmeBlocks();
const runnable = (name: string): Block => {
  const found = BLOCKS.filter((block) => block.marker === `test: ${name}`);
  assert.equal(found.length, 1, `README.md has one block marked <!-- test: ${name} -->`);
  assert.equal(found[0].language, 'sh');
  return found[0];
};

/**
 * A checkout as a reader has one after `npm run build`: dist/ holds the file under test (not a
 * possibly stale committed dist/), everything else is the project's own.
 */
function checkout(t: TestContext): string {
  const dir = tempDir(t, 'anon-stats-readme-checkout-');
  mkdirSync(path.join(dir, 'dist'));
  copyFileSync(BUNDLE, path.join(dir, 'dist/anonymous-statistics.js'));
  copyFileSync(path.join(path.dirname(BUNDLE), 'anonymous-statistics-dashboard.js'), path.join(dir, 'dist/anonymous-statistics-dashboard.js'));
  // Copies, not links: the build checks where each module of src/ really is, and a script run
  // through a link does not see itself as the main module.
  for (const name of ['package.json', 'scripts', 'src', 'tsconfig.json', 'vendor.json']) cpSync(path.join(PROJECT_DIR, name), path.join(dir, name), { recursive: true });
  symlinkSync(path.join(PROJECT_DIR, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

interface BlockRun {
  code: number | null;
  stdout: string;
  stderr: string;
  received: Endpoint;
  stateDir: string;
  configDir: string;
}

/** Runs a block as the README's reader would, in the shell the Quick start block set up. */
async function runBlock(t: TestContext, name: string): Promise<BlockRun> {
  const block = runnable(name);
  const received = await endpoint(t);
  const stateDir = tempDir(t);
  const configDir = tempDir(t);
  // mktemp in a block makes its dirs here, so they go with the test.
  const tmp = tempDir(t, 'anon-stats-readme-tmp-');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmp,
    TMPDIR: tmp,
    TELEMETRY_ENDPOINT: received.url,
    TELEMETRY_STATE_DIR: stateDir,
    TELEMETRY_CONFIG_DIR: configDir,
    // Every node the block starts, npm's and the tool's, fails any attempt to leave 127.0.0.1.
    NODE_OPTIONS: `--require ${path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs')}`,
    TRAP_LOG,
    npm_config_update_notifier: 'false',
  };
  const child = spawn('/bin/sh', ['-e', '-c', block.body], { cwd: checkout(t), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, `README.md line ${block.line} (${name}) failed:\n${stderr}`);
  assert.equal(trapViolations(), '', 'a README block tried to reach beyond 127.0.0.1');
  return { code, stdout, stderr, received, stateDir, configDir };
}

/** Resolves once the receiver holds `count` events: --background senders deliver after the block returns. */
async function eventsArrived(received: Endpoint, count: number): Promise<Record<string, any>[]> {
  while (received.events().length < count) await received.received(received.requests.length + 1);
  return arrived(received);
}

/** The events as JSON gives them, for checks that read their properties. */
function arrived(received: Endpoint): Record<string, any>[] {
  return received.events();
}

/** What `npm run endpoint` prints of each event must include every property that is the event's own. */
function assertEndpointShowsOwnFields(events: Record<string, any>[]): void {
  for (const event of events) {
    const line = describeEvent(event);
    for (const [key, value] of ownProperties(event)) assert.ok(line.includes(`${key}=${JSON.stringify(value)}`), `npm run endpoint does not show ${key} of ${event.event}: ${line}`);
  }
}

test('every sh block in the README is run by this suite or says why it cannot be', () => {
  const sh = BLOCKS.filter((block) => block.language === 'sh');
  assert.ok(sh.length >= 6, 'the README was read');
  for (const block of sh) assert.match(block.marker, /^(test: [a-z-]+|not run: .+)$/, `README.md line ${block.line}: an sh block with neither <!-- test: NAME --> nor <!-- not run: WHY -->`);
  const marked = BLOCKS.filter((block) => block.marker.startsWith('test: ')).map((block) => block.marker.slice('test: '.length));
  assert.deepEqual(marked.sort(), Object.keys(CHECKS).sort(), 'each <!-- test: NAME --> has a check here, and each check a block');
});

test('the README blocks that are not run name only npm scripts and files that exist', () => {
  const scripts = JSON.parse(readFileSync(path.join(PROJECT_DIR, 'package.json'), 'utf8')).scripts as Record<string, string>;
  for (const block of BLOCKS.filter((b) => b.language === 'sh')) {
    for (const [, script] of block.body.matchAll(/npm run ([a-z:-]+)/g)) assert.ok(script in scripts, `README.md line ${block.line}: npm run ${script} is not a script`);
    for (const [file] of block.body.matchAll(/\bscripts\/[\w./-]+/g)) assert.ok(existsSync(path.join(PROJECT_DIR, file)), `README.md line ${block.line}: ${file} does not exist`);
  }
});

test('the README first block runs npm test and npm run demo and says the demo needs Chromium', () => {
  const first = BLOCKS[0];
  assert.equal(first.language, 'sh');
  assert.match(first.body, /npm run demo/);
  assert.match(first.body, /npm test/);
  assert.match(first.body, /needs Chromium/);
});

test('the README systemd drop-in is the shipped one', () => {
  const shown = BLOCKS.find((block) => block.marker.startsWith('check: systemd-drop-in'));
  assert.ok(shown, 'README.md has a block marked <!-- check: systemd-drop-in -->');
  const shipped = readFileSync(path.join(PROJECT_DIR, 'scripts/systemd/anonymous-statistics.conf'), 'utf8');
  assert.equal(shown.body, shipped.slice(shipped.indexOf('[Service]')));
});

const CHECKS: Record<string, (t: TestContext) => Promise<void>> = {
  events: async (t) => {
    const { received } = await runBlock(t, 'events');
    const events = arrived(received);
    assert.deepEqual(
      events.map((e) => e.event),
      ['start', 'fatal', 'cloud-connect-fail', 'cloud-deps-fail', 'cloud-unavailable', 'stop', 'install'],
    );
    const [start, fatal, cloud, , , stop, install] = events.map((e) => e.properties);
    assert.equal(start.schema_version, 2);
    assert.equal(start.product_version, '1.44.0');
    assert.equal(start.previous_run_end, 'none');
    assert.equal(fatal.fatal_message, '-12 ENOMEM', 'a quoted value that starts with - is the value');
    assert.equal(fatal.fatal_line, 212);
    assert.deepEqual(cloud.cloud_error_codes, ['ECONNREFUSED', 'HTTP_503']);
    assert.equal(stop.exit_code, 1);
    for (const props of [fatal, cloud, stop]) assert.equal(props.run_id, start.run_id, 'a run ties its events together');
    assert.deepEqual([install.install_result, install.install_code], ['success', '0']);
    assertEndpointShowsOwnFields(events);
  },

  look: async (t) => {
    const { received, stdout, stateDir } = await runBlock(t, 'look');
    assert.equal(received.requests.length, 0, 'a dry run, status and history send nothing');
    const payload = JSON.parse(stdout.split('\n')[0]);
    assert.equal(payload.event, 'start');
    assert.equal(payload.properties.schema_version, 2);
    assert.match(stdout, /telemetry: on/);
    assert.ok(stdout.includes(stateDir), 'status names the state dir in effect');
  },

  'opt-out': async (t) => {
    const { received, stdout, configDir } = await runBlock(t, 'opt-out');
    assert.equal(received.requests.length, 0, 'nothing is sent under any of the opt-outs');
    assert.match(stdout, /telemetry: off/);
    assert.ok(stdout.includes('.opt-out-from-anonymous-statistics'), 'status names the marker that turned it off');
    assert.equal(existsSync(path.join(configDir, '.opt-out-from-anonymous-statistics')), false, 'enable removed the marker');
  },

  cli: async (t) => {
    const { received } = await runBlock(t, 'cli');
    const events = arrived(received);
    assert.deepEqual(
      events.map((e) => e.event),
      ['command-start', 'command-action', 'command-end'],
    );
    const [start, action, end] = events.map((e) => e.properties);
    assert.match(start.execution_id, /^[0-9a-f-]{36}$/);
    assert.equal(action.execution_id, start.execution_id);
    assert.equal(end.execution_id, start.execution_id);
    assert.deepEqual(start.command_flags, ['repo', 'dry-run']);
    assert.deepEqual(end.command_env_options, ['WERF_REPO']);
    assert.equal(action.command_action, 'upload');
    assert.equal(end.exit_code, 3, 'the block passes the command status it set');
    assert.equal(typeof end.duration_ms, 'number');
    assertEndpointShowsOwnFields(events);
  },

  consent: async (t) => {
    const { received, stdout } = await runBlock(t, 'consent');
    assert.equal(received.requests.length, 0);
    const consent = JSON.parse(stdout);
    assert.deepEqual(Object.keys(consent).sort(), ['api_key', 'distinct_id', 'enabled', 'endpoint', 'product', 'product_version', 'schema_version']);
    assert.equal(consent.enabled, true);
    assert.equal(consent.schema_version, 2);
    // The README's example document has the same keys in the same order.
    const example = BLOCKS.find((block) => block.language === 'json' && block.body.startsWith('{"enabled":true'));
    assert.ok(example, 'the README shows a consent document');
    assert.deepEqual(Object.keys(JSON.parse(example.body)), Object.keys(consent));
    assert.equal(JSON.parse(example.body).schema_version, consent.schema_version);
  },

  // Needs scripts/install.sh --src (CONTRACT "The example installer"), which another branch adds.
  vendor: async (t) => {
    const { received, stdout } = await runBlock(t, 'vendor');
    const events = await eventsArrived(received, 3);
    assert.deepEqual(events.map((e) => e.event).sort(), ['install', 'start', 'stop'], 'the install report, the hook\'s start and the stop; nothing from the opted-out start');
    for (const event of events) assert.equal(event.properties.product, 'acme-agent', 'the flavour was installed, not the example build');
    assert.equal(events.find((e) => e.event === 'install')?.properties.install_result, 'success');
    assert.equal(events.find((e) => e.event === 'stop')?.properties.exit_code, 0);
    assert.match(stdout, /telemetry: on/);
    assert.match(stdout, /root\/var\/lib\/acme-agent/, 'the installed copy uses the state dir its installer chose');
    assert.match(stdout, /acme disable/, 'status speaks with the product\'s command');
  },
};

for (const [name, check] of Object.entries(CHECKS)) test(`the README block "${name}" runs as written and delivers what it says`, check);
