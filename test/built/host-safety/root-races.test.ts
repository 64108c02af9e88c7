import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, lchownSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { makeRoot, tempDir, trapViolations } from '../../support/helpers.ts';
import { AS_NOBODY, compileC, MACHINE, NOBODY, openTempDir, receiver, requireRoot, runHard, targetDir } from '../../support/host-safety.ts';

/**
 * A local user who owns a directory on the state dir's path, or its outbox/, must not be able to
 * steer a root run into deleting files elsewhere (issue 14, "a local user can make a root run
 * delete files anywhere"). The attacker really runs as another user (uid 65534); the files at
 * stake are root's, older than the 11 minutes after which the outbox sweeps its own temp files.
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

const OUTBOX_FOLDERS = ['tmp', 'new', 'cur', 'corrupt'];

function contentsOf(dir: string): string[] {
  return readdirSync(dir).sort().map((name) => `${name}: ${readFileSync(path.join(dir, name), 'utf8').trim()}`);
}

function assertIntact(dir: string, expected: string[], after: string): void {
  const now = contentsOf(dir);
  assert.equal(now.length, expected.length, `${expected.length - now.length} of the ${expected.length} root-owned files were deleted by ${after}`);
  assert.deepEqual(now, expected, `the files are unchanged after ${after}`);
}

test('a user who owns the state dir\'s parent and swaps it for a tree of symlinks (renameat2 RENAME_EXCHANGE in a loop) cannot make root\'s flush delete anything', async (t) => {
  requireRoot('another user racing a root run');
  const racer = compileC(t, 'renameat2-racer.c');
  const target = targetDir(t, 200);
  const expected = contentsOf(target);

  // The user's own dir (think $HOME/.local/state under sudo -E, or a --state-dir put in it).
  const home = path.join(openTempDir(t), 'home');
  mkdirSync(home, { mode: 0o755 });
  chownSync(home, NOBODY, NOBODY);
  // The real state dir, as a root run would have made it: root's, 0700.
  const state = path.join(home, 'state');
  for (const folder of OUTBOX_FOLDERS) mkdirSync(path.join(state, 'outbox', folder), { recursive: true, mode: 0o700 });
  // The decoy, the user's own: each outbox folder leads to the target.
  const decoy = path.join(home, 'decoy');
  mkdirSync(path.join(decoy, 'outbox'), { recursive: true, mode: 0o700 });
  for (const folder of OUTBOX_FOLDERS) {
    symlinkSync(target, path.join(decoy, 'outbox', folder));
    lchownSync(path.join(decoy, 'outbox', folder), NOBODY, NOBODY);
  }
  chownSync(path.join(decoy, 'outbox'), NOBODY, NOBODY);
  chownSync(decoy, NOBODY, NOBODY);

  const attacker = spawn(AS_NOBODY[0], [...AS_NOBODY.slice(1), racer, state, decoy], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stopped = new Promise((resolve) => attacker.on('exit', resolve));
  t.after(() => {
    attacker.kill('SIGKILL');
    return stopped;
  });
  const started = await new Promise<string>((resolve) => {
    let said = '';
    attacker.stdout.on('data', (chunk) => (said += chunk) && said.includes('\n') && resolve(said.trim()));
    attacker.stderr.on('data', (chunk) => resolve(`racer failed: ${chunk}`));
    attacker.on('exit', (code) => resolve(`racer exited ${code}`));
  });
  assert.equal(started, 'swapping', 'the attacker swaps the two trees');

  const server = await receiver(t, () => 200);
  const root = makeRoot(t, MACHINE);
  for (let i = 0; i < 20; i++) {
    const flushed = await runHard(['flush', '--timeout', '1000', '--state-dir', state, '--endpoint', server.url, '--root', root], { killAfterMs: 10_000 });
    assert.equal(flushed.killed, false, `flush ${i + 1} never ended`);
  }
  attacker.kill('SIGKILL');
  await stopped;
  assertIntact(target, expected, '20 flushes under the race');
});

test('a user who owns outbox/ of a root-owned state dir and links outbox/tmp to a dir of root\'s makes flush and disable delete nothing there', async (t) => {
  requireRoot('another user\'s outbox/ under a root-run state dir');
  const target = targetDir(t, 200);
  const expected = contentsOf(target);
  // A root-owned 0755 state dir whose outbox/ a non-recursive chown gave to the service user.
  const state = path.join(openTempDir(t), 'state');
  mkdirSync(state, { mode: 0o755 });
  const outbox = path.join(state, 'outbox');
  mkdirSync(outbox, { mode: 0o755 });
  for (const folder of ['new', 'cur', 'corrupt']) {
    mkdirSync(path.join(outbox, folder), { mode: 0o700 });
    chownSync(path.join(outbox, folder), NOBODY, NOBODY);
  }
  symlinkSync(target, path.join(outbox, 'tmp'));
  lchownSync(path.join(outbox, 'tmp'), NOBODY, NOBODY);
  chownSync(outbox, NOBODY, NOBODY);

  const server = await receiver(t, () => 200);
  const args = ['--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)];
  const flushed = await runHard(['flush', ...args]);
  assert.equal(flushed.killed, false, 'flush ended');
  assertIntact(target, expected, 'flush');
  const disabled = await runHard(['disable', '--config-dir', tempDir(t), ...args]);
  assert.equal(disabled.killed, false, 'disable ended');
  assertIntact(target, expected, 'flush and disable');
});
