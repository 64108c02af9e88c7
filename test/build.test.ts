import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { build, dashboardOutfile, DEFAULT_OUTFILE } from '../scripts/build.ts';
import { runBundle, tempDir } from './helpers.ts';
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
  assert.ok(code.length < 10_000, `${code.length} bytes`);
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
  const required = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
  assert.ok(required.length > 0);
  for (const name of required) assert.match(name, /^node:|^(fs|path|os|net|tls|http|https|http2|crypto|util|stream|events|buffer|zlib|url|assert|dns|async_hooks|worker_threads|perf_hooks|querystring|string_decoder|diagnostics_channel|console|util\/types|stream\/web|timers|child_process|sqlite)$/, name);
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
  const cases: [unknown, RegExp][] = [
    [{ product: 'x', endpoint: 'http://insecure.test', apiKey: 'k', configDir: '/c', stateDir: '/s' }, /"endpoint" must use https:/],
    [{ product: 'x', endpoint: 'https://ok.test', apiKey: 'k', configDir: 'relative', stateDir: '/s' }, /"configDir" must be an absolute path/],
    [{ product: 'x', endpoint: 'https://ok.test', configDir: '/c', stateDir: '/s' }, /"apiKey" must be a non-empty string/],
    [{ product: 'x', endpoint: 'https://ok.test', apiKey: 'k', configDir: '/c', stateDir: '/s', extra: 1 }, /unknown field "extra"/],
  ];
  for (const [content, message] of cases) {
    const vendorFile = path.join(dir, 'bad.json');
    writeFileSync(vendorFile, JSON.stringify(content));
    await assert.rejects(build({ vendorFile, outfile: path.join(dir, 'bad.js') }), (error: Error) => error.message.startsWith(vendorFile) && message.test(error.message));
  }
  writeFileSync(path.join(dir, 'broken.json'), '{ not json');
  await assert.rejects(build({ vendorFile: path.join(dir, 'broken.json'), outfile: path.join(dir, 'bad.js') }), /not valid JSON/);
});
