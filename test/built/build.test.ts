import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { build, dashboardOutfile, DEFAULT_OUTFILE } from '../../scripts/build.ts';
import { endpoint, listTree, PROJECT_DIR, runBundle, tempDir, trapViolations } from '../support/helpers.ts';
import { EXAMPLE_API_KEY } from '../../src/before-consent/config/settings.ts';
import { validateVendorConfig } from '../../src/before-consent/config/vendor.ts';
import { optionNames } from '../../src/before-consent/cli/parse.ts';
import { noticeVersion } from '../../src/after-consent/collect/properties.ts';
import { execFile } from 'node:child_process';

test('the committed dist/anonymous-statistics.js and its dashboard module are exactly what a fresh build of src/ produces', async (t) => {
  const outfile = path.join(tempDir(t), 'fresh.js');
  await build({ outfile });
  assert.ok(readFileSync(outfile).equals(readFileSync(DEFAULT_OUTFILE)), 'dist/ is stale: run npm run build and commit it');
  assert.equal(dashboardOutfile(outfile), path.join(path.dirname(outfile), 'anonymous-statistics-dashboard.js'));
  assert.ok(readFileSync(dashboardOutfile(outfile)).equals(readFileSync(dashboardOutfile(DEFAULT_OUTFILE))), 'dist/anonymous-statistics-dashboard.js is stale: run npm run build and commit it');
});

test('the dashboard module is one small ES module that imports nothing and does nothing when loaded', async () => {
  const code = readFileSync(dashboardOutfile(DEFAULT_OUTFILE), 'utf8');
  // About 4 KB of it is the backend's scrubber (src/shared/scrub.ts), bundled whole.
  assert.ok(code.length < 12_000, `${code.length} bytes`);
  // Not even the word: no static import, no import(), no import.meta.
  assert.doesNotMatch(code, /\bimport\b/);
  assert.match(code, /export\{\w+ as startDashboardTelemetry\}/);
  // A data: URL module could not resolve an import if it had one; loading it must leave no trace.
  const globalsBefore = Object.keys(globalThis).sort();
  const module = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
  assert.deepEqual(Object.keys(module), ['startDashboardTelemetry']);
  assert.deepEqual(Object.keys(globalThis).sort(), globalsBefore);
  const silent = module.startDashboardTelemetry({ enabled: false });
  assert.deepEqual(Object.keys(silent), ['pageview', 'action', 'stop']);
  silent.pageview('overview');
  silent.stop();
});

test('the bundle is one self-contained file: a shebang and no require of node_modules', () => {
  const bundle = readFileSync(DEFAULT_OUTFILE, 'utf8');
  assert.ok(bundle.startsWith('#!/usr/bin/env node\n'));
  // The banner an installer reads with sed (test/built/flavour.test.ts runs sed on a vendor's build).
  assert.ok(
    bundle.startsWith(
      '#!/usr/bin/env node\n// product: example-daemon\n// config-dir: /etc/example-daemon\n// state-dir: /var/lib/example-daemon/anonymous-statistics\n' +
        '// command: anonymous-statistics\n// opt-out-env:\n// opt-out-flag:\n"use strict";',
    ),
    bundle.slice(0, 300),
  );
  const required = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
  assert.ok(required.length > 0);
  // The code past consent is handed the modules before consent it uses under these names (scripts/build.ts).
  for (const name of required) assert.match(name, /^handed-over:src\/(before-consent|shared)\/|^node:|^(fs|path|os|net|tls|http|https|http2|crypto|util|stream|events|buffer|zlib|url|assert|dns|async_hooks|worker_threads|perf_hooks|querystring|string_decoder|diagnostics_channel|console|util\/types|stream\/web|timers|child_process|sqlite)$/, name);
});

test('only the code past consent is compiled from a string, by node:vm, under a name of its own: it runs where code generation from strings is forbidden', async (t) => {
  const bundle = readFileSync(DEFAULT_OUTFILE, 'utf8');
  assert.doesNotMatch(bundle, /new Function|\beval\(|"vm"|process\.binding|compileFunction/);
  assert.equal(bundle.split('require("node:vm")').length, 2, 'one use of node:vm');
  // Stack traces past consent name the file and the door (the string has no file of its own).
  assert.match(bundle, /\{filename:"anonymous-statistics#door"\}/);
  const dir = tempDir(t);
  const result = await new Promise<{ code: number | null; stdout: string }>((resolve) =>
    execFile(process.execPath, ['--disallow-code-generation-from-strings', DEFAULT_OUTFILE, 'start', '--dry-run', '--root', dir, '--state-dir', dir], { env: {} }, (error, stdout) =>
      resolve({ code: error ? (error.code as number) : 0, stdout }),
    ),
  );
  assert.equal(result.code, 0);
  assert.equal(JSON.parse(result.stdout).event, 'start');
});

test('the built file knows the notice version the source computes, without node:crypto', async () => {
  const status = JSON.parse((await runBundle(['status', '--json'])).stdout);
  assert.equal(status.notice_version, noticeVersion());
});

test('a vendor flavour bakes its product, endpoint, API key and dirs into the file', async (t) => {
  const dir = tempDir(t);
  const vendorFile = path.join(dir, 'acme.json');
  writeFileSync(vendorFile, JSON.stringify({ product: 'acme-agent', endpoint: 'https://telemetry.acme.test', apiKey: 'phc_acme', configDir: '/etc/acme', stateDir: '/var/lib/acme' }));
  const outfile = path.join(dir, 'acme.js');
  await build({ vendorFile, outfile });
  const result = await new Promise<{ stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [outfile, 'start', '--dry-run', '--root', dir, '--state-dir', dir], { env: {} }, (_e, stdout, stderr) => resolve({ stdout, stderr })),
  );
  const payload = JSON.parse(result.stdout);
  assert.equal(payload.api_key, 'phc_acme');
  assert.equal(payload.properties.product, 'acme-agent');
  assert.match(result.stderr, /https:\/\/telemetry\.acme\.test\/capture\//);
  const status = await runBundle(['status', '--json']);
  assert.equal(JSON.parse(status.stdout).product, 'example-daemon', 'the default build is untouched');
});

test('a bad vendor file is a build error naming the file and the field', async (t) => {
  const dir = tempDir(t);
  const ok = { product: 'x', endpoint: 'https://ok.test', apiKey: 'k', configDir: '/c', stateDir: '/s' };
  const cases: [unknown, RegExp][] = [
    [{ ...ok, endpoint: 'http://insecure.test' }, /: "endpoint" uses http: for a non-loopback host "insecure.test"; use https:/],
    [{ ...ok, endpoint: 'ftp://127.0.0.1' }, /: "endpoint" must be an https: URL, got "ftp:"/],
    [{ ...ok, endpoint: 'not a url' }, /: "endpoint" is not a valid URL/],
    [{ ...ok, configDir: 'relative' }, /"configDir" must be an absolute path/],
    [{ ...ok, stateDir: '/var/lib/x\n// product: evil' }, /"stateDir" must not hold control characters or line breaks/],
    [{ ...ok, apiKey: undefined }, /"apiKey" must be a non-empty string/],
    [{ ...ok, extra: 1 }, /unknown field "extra"/],
    [{ ...ok, commandName: 'acme; rm -rf /' }, /"commandName" must be a command such as "acme"/],
    [{ ...ok, commandName: '' }, /"commandName" must be a command/],
    [{ ...ok, commandName: 7 }, /"commandName" must be a command/],
    [{ ...ok, optOutEnv: ['ACME_OFF'] }, /"optOutEnv" must be an object/],
    [{ ...ok, optOutEnv: { 'ACME-OFF': 'any' } }, /"optOutEnv" key "ACME-OFF" is not an environment variable name/],
    [{ ...ok, optOutEnv: { '1ACME': 'any' } }, /"optOutEnv" key "1ACME" is not an environment variable name/],
    [{ ...ok, optOutEnv: { ACME_TELEMETRY: '1' } }, /"optOutEnv" ACME_TELEMETRY must be "any" .* or "0" .*, got "1"/],
    [{ ...ok, optOutEnv: { DO_NOT_TRACK: '0' } }, /"optOutEnv" key DO_NOT_TRACK is already an opt-out/],
    [{ ...ok, optOutEnv: { TELEMETRY_ENDPOINT: 'any' } }, /"optOutEnv" key TELEMETRY_ENDPOINT is one of the tool's own variables/],
    [{ ...ok, optOutFlag: 'disable-analytics' }, /"optOutFlag" must be a long option such as "--disable-analytics"/],
    [{ ...ok, optOutFlag: '--Disable_Analytics' }, /"optOutFlag" must be a long option/],
    [{ ...ok, optOutFlag: '--config-dir' }, /"optOutFlag" --config-dir is already an option of the tool/],
    [{ ...ok, optOutFlag: '--help' }, /"optOutFlag" --help is already an option of the tool/],
    [{ ...ok, optOutFlag: '--line' }, /"optOutFlag" --line is already an option of the tool/],
  ];
  for (const [content, message] of cases) {
    const vendorFile = path.join(dir, 'bad.json');
    writeFileSync(vendorFile, JSON.stringify(content));
    await assert.rejects(build({ vendorFile, outfile: path.join(dir, 'bad.js') }), (error: Error) => {
      assert.ok(error.message.startsWith(`${vendorFile}: `) && message.test(error.message) && !error.message.includes('\n'), `${JSON.stringify(content)}: ${error.message}`);
      return true;
    });
    assert.equal(existsSync(path.join(dir, 'bad.js')), false, 'a rejected vendor file produced output');
  }
  writeFileSync(path.join(dir, 'broken.json'), '{ not json');
  await assert.rejects(build({ vendorFile: path.join(dir, 'broken.json'), outfile: path.join(dir, 'bad.js') }), /not valid JSON/);
});

test('a vendor file may name a loopback http: endpoint, as --endpoint may, to try a flavour against npm run endpoint', () => {
  const local = (endpoint: string) => ({ product: 'acme-agent', endpoint, apiKey: 'phc_local', configDir: '/etc/acme', stateDir: '/var/lib/acme' });
  for (const endpoint of ['http://127.0.0.1:8765', 'http://localhost:8765', 'http://[::1]:8765']) {
    assert.equal(validateVendorConfig(local(endpoint), 'local.json', optionNames()).endpoint, endpoint);
  }
  for (const endpoint of ['http://127.0.0.1.nip.io', 'http://10.0.0.1:8765']) {
    assert.throws(() => validateVendorConfig(local(endpoint), 'local.json', optionNames()), /^Error: local\.json: "endpoint" uses http: for a non-loopback host/);
  }
});

test("the example build's placeholder key goes to loopback only: elsewhere an event is not sent, in one line, and status, flush and consent say so", async (t) => {
  const vendor = JSON.parse(readFileSync(path.join(PROJECT_DIR, 'vendor.json'), 'utf8'));
  assert.equal(vendor.apiKey, EXAMPLE_API_KEY, 'vendor.json holds the key the tool refuses');
  const dir = tempDir(t);
  const args = ['--root', dir, '--state-dir', path.join(dir, 'state'), '--config-dir', path.join(dir, 'config')];
  const refused = /^anonymous-statistics: not sending to (us\.i\.posthog\.com|telemetry\.example\.com): the API key \((the build-time default|TELEMETRY_API_KEY)\) is the example build's placeholder; build with your own vendor file or set TELEMETRY_API_KEY \(a loopback endpoint takes it as is\)\n$/;
  // The build's endpoint, another one, and the key given again at run time.
  const runs: [string[], Record<string, string>][] = [
    [['start'], {}],
    [['start', '--background', '--show-notice'], {}],
    [['fatal', '--process', 'p', '--thread', 't'], { TELEMETRY_ENDPOINT: 'https://telemetry.example.com' }],
    [['stop'], { TELEMETRY_API_KEY: EXAMPLE_API_KEY }],
  ];
  for (const [command, env] of runs) {
    const result = await runBundle([...command, ...args], env);
    assert.deepEqual([result.code, result.stdout], [0, ''], command.join(' '));
    assert.match(result.stderr, refused, command.join(' '));
  }
  assert.equal(trapViolations(), '', 'a run tried to reach PostHog');
  assert.deepEqual(listTree(dir), [], 'nothing was collected or stored');

  const status = JSON.parse((await runBundle(['status', '--json', ...args])).stdout);
  assert.match(`${status.sending_refused}\n`, /^not sending to us\.i\.posthog\.com: /);
  assert.match((await runBundle(['status', ...args])).stdout, /^endpoint: https:\/\/us\.i\.posthog\.com\/capture\/\n {2}not sending to us\.i\.posthog\.com: /m);
  const ownKey = JSON.parse((await runBundle(['status', '--json', ...args], { TELEMETRY_API_KEY: 'phc_vendor' })).stdout);
  assert.equal(ownKey.sending_refused, null, 'a key of the vendor\'s own goes to PostHog\'s endpoint');
  const local = JSON.parse((await runBundle(['status', '--json', ...args, '--endpoint', 'http://127.0.0.1:9'])).stdout);
  assert.equal(local.sending_refused, null, 'a loopback endpoint takes the placeholder');

  const flush = await runBundle(['flush', ...args]);
  assert.equal(flush.code, 1);
  assert.match(flush.stderr, /^anonymous-statistics: not sending to us\.i\.posthog\.com: .*\n$/);
  const consent = await runBundle(['consent', ...args]);
  assert.deepEqual([consent.code, consent.stdout], [0, '{"enabled":false}\n'], 'a dashboard is not handed the placeholder key');
});

test('an opted-out run of the one bundle loads none of the modules that detection, delivery and the background sender need', async (t) => {
  const dir = tempDir(t);
  const loaded = path.join(dir, 'loaded.json');
  const recorder = path.join(dir, 'record-modules.cjs');
  // process.moduleLoadList: every internal module Node has loaded in this process, in order, read
  // before the recorder's own require of node:fs. Module._load sees each require the bundle makes.
  writeFileSync(
    recorder,
    `const Module = require('node:module');
const load = Module._load;
const required = new Set();
Module._load = function (request, ...rest) { required.add(request); return load.call(this, request, ...rest); };
process.on('exit', () => {
  const record = JSON.stringify({ modules: process.moduleLoadList, required: [...required] });
  require('node:fs').writeFileSync(${JSON.stringify(loaded)}, record);
});
`,
  );
  const server = await endpoint(t);
  const args = ['--endpoint', server.url, '--state-dir', path.join(dir, 'state'), '--config-dir', path.join(dir, 'config'), '--root', dir];
  const record = async (command: string[], env: Record<string, string>) => {
    const result = await runBundle([...command, ...args], { ...env, NODE_OPTIONS: `--require ${recorder}` });
    assert.equal(result.code, 0, result.stderr);
    const { modules, required } = JSON.parse(readFileSync(loaded, 'utf8')) as { modules: string[]; required: string[] };
    return { modules: modules.filter((line) => /^NativeModule (http|https|net|tls|crypto|zlib|child_process|vm)$/.test(line)), required };
  };
  for (const command of [['start'], ['start', '--background'], ['command-start', '--name', 'converge']]) {
    assert.deepEqual((await record(command, { DO_NOT_TRACK: '1' })).modules, [], command.join(' '));
  }
  // Opted out by a flag or a variable, a run touches no file, so it does not load node:fs, which
  // on Node 18 loads fs/promises and 30 modules more (src/before-consent/node-builtins.ts); nor node:os.
  for (const [command, env] of [[['stop'], { DISABLE_TELEMETRY: '1' }], [['start', '--disable-telemetry'], {}]] as const) {
    const { required } = await record([...command], env);
    assert.deepEqual(required.filter((id) => ['node:fs', 'node:os'].includes(id)), [], command.join(' '));
  }
  // The marker is a file: that run loads node:fs, as the recorder shows.
  mkdirSync(path.join(dir, 'config'));
  writeFileSync(path.join(dir, 'config/.opt-out-from-anonymous-statistics'), '');
  assert.ok((await record(['start'], {})).required.includes('node:fs'), 'an opt-out by the marker file reads it');
  rmSync(path.join(dir, 'config/.opt-out-from-anonymous-statistics'));
  // The recorder sees them where a run goes on: the sender, and the caller that starts one, which
  // needs no crypto to store the event and start the sender (the notice version is built in).
  const sender = (await record(['start'], {})).modules;
  assert.ok(sender.includes('NativeModule http') && sender.includes('NativeModule vm'), sender.join());
  const caller = (await record(['stop', '--background'], {})).modules;
  assert.ok(caller.includes('NativeModule child_process') && !caller.includes('NativeModule crypto'), caller.join());
  await server.received(2);
});
