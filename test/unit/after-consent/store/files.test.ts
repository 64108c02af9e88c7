import assert from 'node:assert/strict';
import { closeSync, constants, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { O_PATH } from '../../../../src/after-consent/fs-flags.ts';
import { workingIn } from '../../../../src/after-consent/store/files.ts';

const linux = process.platform === 'linux';

/** A folder made and opened the way the state dir opens one (O_PATH), closed after the test; the path the store reaches it by. */
function openedFolder(t: { after: (fn: () => void) => void }, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const fd = openSync(dir, O_PATH | constants.O_DIRECTORY);
  t.after(() => closeSync(fd));
  return `/proc/self/fd/${fd}`;
}

/** More than one file: what makes borrowing pay (a flush's claims). */
const SEVERAL = 2;

function scratch(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'working-in-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('names given through `at` reach the opened folder, and the working dir is given back', { skip: !linux && 'needs /proc/self/fd (Linux)' }, (t) => {
  const dir = scratch(t);
  const cur = openedFolder(t, path.join(dir, 'cur'));
  const before = process.cwd();
  const named = workingIn(cur, SEVERAL, (at) => {
    writeFileSync(at('claimed'), 'x');
    return at('claimed');
  });
  assert.equal(named, 'claimed', 'inside, a name is used as it is, not joined to /proc/self/fd/N');
  assert.equal(readFileSync(path.join(dir, 'cur', 'claimed'), 'utf8'), 'x');
  assert.equal(process.cwd(), before);
});

test('the working dir is given back when the work throws', { skip: !linux && 'needs /proc/self/fd (Linux)' }, (t) => {
  const folder = openedFolder(t, scratch(t));
  const before = process.cwd();
  assert.throws(
    () =>
      workingIn(folder, SEVERAL, () => {
        throw new Error('a rename failed');
      }),
    /a rename failed/,
  );
  assert.equal(process.cwd(), before);
});

test('a folder swapped for a symlink after it was opened: names still reach the opened folder', { skip: !linux && 'needs /proc/self/fd (Linux)' }, (t) => {
  const dir = scratch(t);
  mkdirSync(path.join(dir, 'elsewhere'));
  const cur = openedFolder(t, path.join(dir, 'cur'));
  // What a hostile owner of a parent would do between the check and the use.
  renameSync(path.join(dir, 'cur'), path.join(dir, 'moved'));
  symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'cur'));
  workingIn(cur, SEVERAL, (at) => writeFileSync(at('claimed'), 'x'));
  assert.ok(existsSync(path.join(dir, 'moved', 'claimed')), 'written in the folder that was opened');
  assert.ok(!existsSync(path.join(dir, 'elsewhere', 'claimed')), 'never through the planted symlink');
});

test('a working dir that is gone is given back too', { skip: !linux && 'needs /proc/self/fd (Linux)' }, (t) => {
  const dir = scratch(t);
  mkdirSync(path.join(dir, 'gone'));
  const cur = openedFolder(t, path.join(dir, 'cur'));
  const before = process.cwd();
  t.after(() => process.chdir(before));
  process.chdir(path.join(dir, 'gone'));
  rmSync(path.join(dir, 'gone'), { recursive: true });
  const gone = openSync('.', O_PATH | constants.O_DIRECTORY);
  t.after(() => closeSync(gone));
  workingIn(cur, SEVERAL, (at) => writeFileSync(at('claimed'), 'x'));
  assert.ok(existsSync(path.join(dir, 'cur', 'claimed')));
  // process.cwd() cannot name a removed dir; the descriptor's inode says where we are.
  assert.deepEqual(inodeOf('.'), inodeOf(`/proc/self/fd/${gone}`));
});

test('a checked path (no /proc/self/fd): the whole path, nothing borrowed', (t) => {
  const dir = scratch(t);
  const before = process.cwd();
  const named = workingIn(dir, SEVERAL, (at) => {
    assert.equal(process.cwd(), before);
    writeFileSync(at('claimed'), 'x');
    return at('claimed');
  });
  assert.equal(named, `${dir}/claimed`);
  assert.ok(existsSync(path.join(dir, 'claimed')));
});

test('one file: the whole path through /proc/self/fd, nothing borrowed (borrowing would resolve /proc twice)', { skip: !linux && 'needs /proc/self/fd (Linux)' }, (t) => {
  const dir = scratch(t);
  const cur = openedFolder(t, path.join(dir, 'cur'));
  const before = process.cwd();
  const named = workingIn(cur, 1, (at) => {
    assert.equal(process.cwd(), before);
    writeFileSync(at('claimed'), 'x');
    return at('claimed');
  });
  assert.equal(named, `${cur}/claimed`);
  assert.ok(existsSync(path.join(dir, 'cur', 'claimed')));
});

function inodeOf(file: string): { dev: number; ino: number } {
  const fd = openSync(file, O_PATH | constants.O_DIRECTORY);
  try {
    const { dev, ino } = fstatSync(fd);
    return { dev, ino };
  } finally {
    closeSync(fd);
  }
}
