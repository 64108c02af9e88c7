import assert from 'node:assert/strict';
import { chmodSync, lchownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { makeRoot, tempDir, trapViolations } from '../../support/helpers.ts';
import { MACHINE, NOBODY, openTempDir, receiver, requireRoot, runHard } from '../../support/host-safety.ts';

/**
 * A --log-file in a shared sticky dir (/tmp) that another user has replaced with a symlink is not
 * followed by root: the link would make root append to any file on the machine (issue 14). The
 * kernel's fs.protected_symlinks stops this where it is on; the tool must not rely on it.
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

test('root does not follow a --log-file symlink another user planted in a sticky dir', async (t) => {
  requireRoot('a symlink owned by another user');
  const sticky = path.join(openTempDir(t), 'tmp');
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  const victim = path.join(tempDir(t), 'shadow');
  writeFileSync(victim, 'root:*:19000:0:99999:7:::\n', { mode: 0o600 });
  const before = { text: readFileSync(victim, 'utf8'), mtime: statSync(victim).mtimeMs };
  const log = path.join(sticky, 'telemetry.log');
  symlinkSync(victim, log);
  lchownSync(log, NOBODY, NOBODY);

  const server = await receiver(t, () => 200);
  const run = await runHard(['start', '--log-file', log, '--state-dir', path.join(tempDir(t), 'state'), '--endpoint', server.url, '--root', makeRoot(t, MACHINE)]);
  assert.deepEqual([run.killed, run.code], [false, 0], run.stderr);
  assert.equal(server.accepted().length, 1, 'the event itself went');
  assert.deepEqual({ text: readFileSync(victim, 'utf8'), mtime: statSync(victim).mtimeMs }, before, 'the file the link points to was not written');
});
