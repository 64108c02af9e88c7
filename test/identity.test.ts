import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { appSpecificId, DISTINCT_ID_FILE, distinctId } from '../src/collect/identity.ts';
import { listTree, makeRoot, tempDir } from './helpers.ts';

const MACHINE_ID = '4c4c4544004b4e10805ac4c04f4e4d33';
const uuid = () => '11111111-2222-4333-8444-555555555555';

test('with a machine id: a keyed hash shaped as a UUID v4, stable, app-specific, and not the raw id', (t) => {
  const root = makeRoot(t, { 'etc/machine-id': `${MACHINE_ID}\n` });
  const stateDir = tempDir(t);
  const id = distinctId({ root, product: 'daemon-a', stateDir, persist: true, uuid, uid: undefined });
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(id, distinctId({ root, product: 'daemon-a', stateDir, persist: true, uuid, uid: undefined }));
  assert.notEqual(id, appSpecificId(MACHINE_ID, 'daemon-b'));
  assert.ok(!id.replaceAll('-', '').includes(MACHINE_ID.slice(0, 12)));
  assert.deepEqual(listTree(stateDir), ['distinct-id-derived.json'], 'only the derived id is cached');
});

test('the cached derived id follows the machine id and the product, never going stale', (t) => {
  const stateDir = tempDir(t);
  const first = makeRoot(t, { 'etc/machine-id': `${MACHINE_ID}\n` });
  const second = makeRoot(t, { 'etc/machine-id': 'ffeeddccbbaa99887766554433221100\n' });
  const a = distinctId({ root: first, product: 'p', stateDir, persist: true, uuid, uid: undefined });
  assert.equal(a, appSpecificId(MACHINE_ID, 'p'));
  assert.equal(distinctId({ root: second, product: 'p', stateDir, persist: true, uuid, uid: undefined }), appSpecificId('ffeeddccbbaa99887766554433221100', 'p'));
  assert.equal(distinctId({ root: second, product: 'q', stateDir, persist: true, uuid, uid: undefined }), appSpecificId('ffeeddccbbaa99887766554433221100', 'q'));
  const dry = tempDir(t);
  distinctId({ root: first, product: 'p', stateDir: dry, persist: false, uuid, uid: undefined });
  assert.deepEqual(listTree(dry), [], 'a dry run caches nothing');
});

test('without a usable machine id: a random id persisted 0600 in a 0700 state dir and reused', (t) => {
  const root = makeRoot(t, { 'etc/machine-id': '\n' });
  const stateDir = path.join(tempDir(t), 'state');
  const id = distinctId({ root, product: 'p', stateDir, persist: true, uuid, uid: undefined });
  assert.equal(id, uuid());
  const file = path.join(stateDir, DISTINCT_ID_FILE);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(stateDir).mode & 0o777, 0o700);
  assert.equal(readFileSync(file, 'utf8'), `${uuid()}\n`);
  assert.equal(distinctId({ root, product: 'p', stateDir, persist: true, uuid: () => 'other', uid: undefined }), uuid());
});

test('persist: false (dry run) writes nothing', (t) => {
  const root = makeRoot(t, {});
  const stateDir = tempDir(t);
  distinctId({ root, product: 'p', stateDir, persist: false, uuid, uid: undefined });
  assert.deepEqual(listTree(stateDir), []);
});

test('an unwritable state dir costs only the stability of the id', (t) => {
  const root = makeRoot(t, { 'blocker': 'a file where a directory should be' });
  const id = distinctId({ root, product: 'p', stateDir: path.join(root, 'blocker', 'state'), persist: true, uuid, uid: undefined });
  assert.equal(id, uuid());
});
