import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { exists, MAX_READ_BYTES, readLink, readText, resolveInRoot } from '../../../../../src/after-consent/collect/detect/fs.ts';
import { makeRoot, tempDir } from '../../../../support/helpers.ts';

test('an absolute symlink resolves inside the root, not on the host', (t) => {
  const root = makeRoot(t, { 'usr/lib/os-release': 'ID=inside\n', 'etc/os-release': { link: '/usr/lib/os-release' } });
  assert.equal(readText(root, 'etc/os-release'), 'ID=inside\n');
});

test('a relative symlink resolves as on the real system', (t) => {
  const root = makeRoot(t, { 'usr/lib/os-release': 'ID=rel\n', 'etc/os-release': { link: '../usr/lib/os-release' } });
  assert.equal(readText(root, 'etc/os-release'), 'ID=rel\n');
});

test('.. in a symlink stops at the root, so nothing outside it is read', (t) => {
  const outside = tempDir(t);
  writeFileSync(path.join(outside, 'secret'), 'outside the root\n');
  const link = `../../../../../../../../${outside}/secret`;
  const root = makeRoot(t, { 'etc/os-release': { link } });
  assert.equal(readText(root, 'etc/os-release'), undefined);
  // The same path, present inside the root, is the one that is read.
  const rootWithCopy = makeRoot(t, { 'etc/os-release': { link }, [`${outside}/secret`]: 'inside the root\n' });
  assert.equal(resolveInRoot(rootWithCopy, 'etc/os-release'), path.join(rootWithCopy, outside, 'secret'));
  assert.equal(readText(rootWithCopy, 'etc/os-release'), 'inside the root\n');
});

test('an absolute symlink to a host file does not reach the host file', (t) => {
  const outside = tempDir(t);
  writeFileSync(path.join(outside, 'host-only'), 'host\n');
  const root = makeRoot(t, { 'etc/os-release': { link: path.join(outside, 'host-only') } });
  assert.equal(readText(root, 'etc/os-release'), undefined);
});

test('a symlink loop is no signal, not a hang or a throw', (t) => {
  const root = makeRoot(t, { 'etc/a': { link: 'b' }, 'etc/b': { link: 'a' } });
  assert.equal(readText(root, 'etc/a'), undefined);
  assert.equal(exists(root, 'etc/a'), false);
});

test('missing files and directories read as absent', (t) => {
  const root = makeRoot(t, { 'etc/hostname': 'x\n' });
  assert.equal(readText(root, 'proc/cpuinfo'), undefined);
  assert.equal(readText(root, 'etc/hostname/child'), undefined);
  assert.equal(exists(root, 'etc/hostname/child'), false);
});

test('readLink reports the target of the link itself', (t) => {
  const root = makeRoot(t, { 'proc/self/ns/pid': { link: 'pid:[4026532198]' } });
  assert.equal(readLink(root, 'proc/self/ns/pid'), 'pid:[4026532198]');
});

test('files of every size read whole up to the bound; the buffer they share shows nothing of one in another', (t) => {
  const big = 'cpu\n'.repeat(50_000); // 200 KB: more than one read buffer
  const huge = 'x'.repeat(MAX_READ_BYTES + 4096);
  const root = makeRoot(t, { 'proc/cpuinfo': big, 'etc/huge': huge, 'etc/hostname': 'h\n', 'etc/empty': '' });
  assert.equal(readText(root, 'etc/hostname'), 'h\n');
  assert.equal(readText(root, 'proc/cpuinfo'), big);
  assert.equal(readText(root, 'etc/hostname'), 'h\n');
  assert.equal(readText(root, 'etc/huge'), huge.slice(0, MAX_READ_BYTES));
  assert.equal(readText(root, 'etc/empty'), '');
  assert.equal(readText(root, 'etc/hostname'), 'h\n');
});

test('a file of size 0 that is not empty (as /proc reports its files) is read to its end', () => {
  const status = readText('/', 'proc/self/status');
  assert.match(status ?? '', /^Name:/);
  assert.match(status ?? '', /\nPid:\s+\d+\n/);
});
