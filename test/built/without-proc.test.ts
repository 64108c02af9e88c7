import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { endpoint, outboxFolders, runBundleUnder, tempDir, unlessRoot } from '../support/helpers.ts';

/**
 * Where /proc/self/fd is not there (macOS, FreeBSD, a chroot without /proc), the state dir is
 * walked and used by path, stdout is fd 1 as it is, and detection reads by stat and open: the
 * fallbacks of the Linux paths, run here in a mount namespace whose /proc is an empty tmpfs.
 * Without /dev/urandom, ids come from node:crypto instead.
 */
const WITHOUT_PROC = ['unshare', '--mount', 'sh', '-c', 'mount -t tmpfs none /proc && exec "$@"', 'sh'];

test('without /proc the state dir is checked and used by path: an event is stored, sent, and status finds it', { skip: unlessRoot('a mount namespace') }, async (t) => {
  const server = await endpoint(t);
  const state = path.join(tempDir(t), 'state');
  const args = ['--state-dir', state, '--endpoint', server.url];
  const sent = await runBundleUnder(WITHOUT_PROC, ['start', ...args]);
  assert.deepEqual([sent.code, sent.stderr], [0, '']);
  assert.deepEqual(server.events().map((event) => event.event), ['start']);
  assert.ok(existsSync(path.join(state, '.anonymous-statistics-state-dir')), 'the dir was made and tagged');
  assert.deepEqual(outboxFolders(state), { tmp: [], new: [], cur: [], corrupt: [] });
  const status = await runBundleUnder(WITHOUT_PROC, ['status', '--json', ...args]);
  assert.equal(JSON.parse(status.stdout).state_dir, state);
});

test('without /proc a refused state dir is still refused, and command-start still prints its id on stdout', { skip: unlessRoot('a mount namespace') }, async (t) => {
  const base = tempDir(t);
  const started = await runBundleUnder(WITHOUT_PROC, ['command-start', '--name', 'converge', '--disable-telemetry']);
  assert.match(started.stdout, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$/);
  // A daemon's own dir: not the tool's, whoever walks it.
  const daemon = path.join(base, 'daemon');
  const status = await runBundleUnder(WITHOUT_PROC, ['status', '--json', '--state-dir', daemon]);
  assert.equal(JSON.parse(status.stdout).state_dir, daemon, 'a dir that does not exist yet would be made');
  mkdirSync(path.join(daemon, 'queue'), { recursive: true });
  const refused = JSON.parse((await runBundleUnder(WITHOUT_PROC, ['status', '--json', '--state-dir', daemon])).stdout);
  assert.equal(refused.unusable_state_dirs[0]?.dir, daemon);
  assert.match(refused.unusable_state_dirs[0]?.reason, /holds files that are not the tool's/);
});

test('without /dev/urandom the ids come from node:crypto: still random, still UUIDs', { skip: unlessRoot('a mount namespace') }, async () => {
  const withoutDev = ['unshare', '--mount', 'sh', '-c', 'mount -t tmpfs none /dev && exec "$@"', 'sh'];
  const ids = await Promise.all([1, 2].map(() => runBundleUnder(withoutDev, ['command-start', '--name', 'converge', '--disable-telemetry'])));
  for (const { code, stdout } of ids) assert.deepEqual([code, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$/.test(stdout)], [0, true], stdout);
  assert.notEqual(ids[0].stdout, ids[1].stdout);
});
