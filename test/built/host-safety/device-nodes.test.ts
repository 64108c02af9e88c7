import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { makeRoot, tempDir, trapViolations } from '../../support/helpers.ts';
import { MACHINE, requireRoot, runHard } from '../../support/host-safety.ts';

/**
 * A device node planted in a --root is never open()ed: a watchdog or a tape drive acts on open
 * and close, so looking at it with fstat after opening is already too late (issue 14). strace
 * shows every open the run makes; an O_PATH open (which does not reach the driver) is allowed.
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

/** Files a run reads under --root, each replaced here by a character device (that of /dev/null: harmless). */
const PLANTED = ['etc/os-release', 'usr/lib/os-release', 'sys/class/dmi/id/product_name', 'sys/class/dmi/id/sys_vendor', 'proc/sys/kernel/osrelease', 'proc/1/environ', 'etc/machine-id'];

/**
 * The path an open names is a planted node: by its full path, relative to a directory fd
 * (openat(fd, "id/product_name")), or through /proc/self/fd/N/.
 */
function opensPlanted(line: string, root: string): boolean {
  const named = /open(?:at2?)?\((?:[^,"]+, )?"([^"]+)"/.exec(line)?.[1];
  if (named === undefined) return false;
  const viaFd = /^\/proc\/self\/fd\/\d+\/(.+)$/.exec(named)?.[1];
  return PLANTED.some((rel) => named === path.join(root, rel) || (!named.startsWith('/') && rel.endsWith(named)) || (viaFd !== undefined && rel.endsWith(viaFd)));
}

test('character devices planted in --root where system files are read are never opened', async (t) => {
  requireRoot('mknod');
  const root = makeRoot(t, MACHINE);
  for (const rel of PLANTED) {
    const file = path.join(root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    rmSync(file, { force: true });
    execFileSync('mknod', ['-m', '0644', file, 'c', '1', '3']);
  }
  const trace = path.join(tempDir(t), 'opens.trace');
  const run = await runHard(['start', '--dry-run', '--root', root], { wrapper: ['strace', '-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', trace], killAfterMs: 20_000 });
  assert.deepEqual([run.killed, run.code], [false, 0], run.stderr);
  const opens = readFileSync(trace, 'utf8').split('\n').filter((line) => /\bopen(at2?)?\(/.test(line));
  assert.ok(opens.some((line) => line.includes(root)), 'strace saw the run look under --root');
  const openedDevices = opens.filter((line) => !line.includes('O_PATH') && opensPlanted(line, root));
  assert.deepEqual(openedDevices, [], 'no planted device node was opened');
});
