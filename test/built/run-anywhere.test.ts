import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { BUNDLE, endpoint, makeRoot, runBuilt, runBundleUnder, tempDir, trapViolations } from '../support/helpers.ts';

/**
 * The built file runs wherever Node runs it (CONTRACT "Build and run"): installed inside a
 * vendor's own ES-module package, under a path with spaces, from a working directory that is
 * gone; and a bug of ours costs one line, never the bundle's source. Run by
 * scripts/test-node-versions.ts under every supported Node.
 */

const ROOT = { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'proc/sys/kernel/ostype': 'Linux\n', 'proc/sys/kernel/osrelease': '6.1.0\n' };
const LIMIT_MS = 20_000;

/** A copy of the built file at `relative` below a new temp dir. */
function installCopy(t: TestContext, relative: string, files: Record<string, string> = {}): string {
  const base = tempDir(t, 'anon-stats-anywhere-');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(base, name)), { recursive: true });
    writeFileSync(path.join(base, name), content);
  }
  const file = path.join(base, relative);
  mkdirSync(path.dirname(file), { recursive: true });
  copyFileSync(BUNDLE, file);
  return file;
}

/** A foreground event, then one sent by the --background child: both must arrive. */
async function sendsInBothWays(t: TestContext, run: (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>): Promise<void> {
  const server = await endpoint(t);
  const state = path.join(tempDir(t), 'state');
  const args = ['--endpoint', server.url, '--state-dir', state, '--config-dir', state, '--root', makeRoot(t, ROOT)];
  const foreground = await run(['start', ...args]);
  assert.deepEqual([foreground.code, foreground.stdout, foreground.stderr], [0, '', '']);
  assert.deepEqual(server.events().map((event) => event.event), ['start']);
  const background = await run(['stop', '--background', ...args]);
  assert.deepEqual([background.code, background.stdout, background.stderr], [0, '', '']);
  await server.received(2);
  assert.deepEqual(server.events().map((event) => event.event), ['start', 'stop']);
  assert.equal(trapViolations(), '');
}

test('installed in a package whose package.json says "type": "module", it runs as an ES module and sends, in the foreground and the background', { timeout: LIMIT_MS }, async (t) => {
  const file = installCopy(t, 'node_modules/acme-cli/dist/anonymous-statistics.js', {
    'package.json': '{"name":"acme","type":"module"}\n',
    'node_modules/acme-cli/package.json': '{"name":"acme-cli","type":"module"}\n',
  });
  await sendsInBothWays(t, (args) => runBuilt(file, args));
});

test('under a path with spaces it sends, in the foreground and the background', { timeout: LIMIT_MS }, async (t) => {
  const file = installCopy(t, 'Program Files/acme agent/anonymous-statistics.js');
  await sendsInBothWays(t, (args) => runBuilt(file, args));
});

test('from a working directory that was deleted it sends, in the foreground and the background, and status answers', { timeout: LIMIT_MS }, async (t) => {
  const gone = path.join(tempDir(t), 'gone');
  const fromGone = (args: string[]) => {
    mkdirSync(gone, { recursive: true });
    // sh enters the dir, removes it, then becomes node: node starts in a cwd that no longer exists.
    return runBundleUnder(['/bin/sh', '-c', 'cd "$1" && rmdir "$1" && shift && exec "$@"', 'sh', gone], args);
  };
  await sendsInBothWays(t, fromGone);
  const status = await fromGone(['status', '--json', '--config-dir', gone]);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).telemetry, 'on');
  // Only a relative path needs the working directory: a usage error naming it, not a crash.
  const relative = await fromGone(['start', '--state-dir', 'state', '--endpoint', 'http://127.0.0.1:9']);
  assert.deepEqual([relative.code, relative.stderr], [2, 'anonymous-statistics: --state-dir "state" is relative, and the working directory it is relative to is gone (see anonymous-statistics --help)\n']);
});

test('a bug of ours prints one line naming the tool, never the bundle source, as CommonJS and as an ES module', { timeout: LIMIT_MS }, async (t) => {
  // Stands for any bug that escapes main(): createContext() asks for the uid while the file loads.
  const bug = path.join(tempDir(t), 'getuid-throws.cjs');
  writeFileSync(bug, "Object.defineProperty(process, 'getuid', { value: () => { throw new Error('getuid failed'); } });\n");
  const asModule = installCopy(t, 'lib/anonymous-statistics.js', { 'package.json': '{"type":"module"}\n' });
  for (const file of [BUNDLE, asModule]) {
    const result = await runBuilt(file, ['start', '--dry-run'], { NODE_OPTIONS: `--require ${bug}` });
    assert.deepEqual([result.code, result.stdout], [1, ''], file);
    assert.equal(result.stderr, 'anonymous-statistics: internal error: getuid failed (set TELEMETRY_DEBUG=1 for details)\n', file);
    const debug = await runBuilt(file, ['start', '--dry-run'], { NODE_OPTIONS: `--require ${bug}`, TELEMETRY_DEBUG: '1' });
    assert.match(debug.stderr, /^anonymous-statistics: internal error: Error: getuid failed\n {4}at /, file);
    assert.ok(debug.stderr.length < 4000, `${file}: the stack, not the source (${debug.stderr.length} bytes)`);
  }
});
