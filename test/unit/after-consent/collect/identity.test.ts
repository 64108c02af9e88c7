import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appSpecificId, distinctId } from '../../../../src/after-consent/collect/identity.ts';
import { makeRoot } from '../../../support/helpers.ts';

const MACHINE_ID = '4c4c4544004b4e10805ac4c04f4e4d33';
const SALT = 'a'.repeat(64);
const noRandomId = () => assert.fail('a machine id was there: no random id is needed');
const salted = (salt: string) => ({ salt: () => salt, randomId: noRandomId });

test('with a machine id: a keyed hash shaped as a UUID v4, stable, app-specific, and not the raw id', (t) => {
  const root = makeRoot(t, { 'etc/machine-id': `${MACHINE_ID}\n` });
  const id = distinctId(root, 'daemon-a', salted(SALT));
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(id, distinctId(root, 'daemon-a', salted(SALT)));
  assert.notEqual(id, appSpecificId(MACHINE_ID, 'daemon-b', SALT));
  assert.ok(!id.replaceAll('-', '').includes(MACHINE_ID.slice(0, 12)));
});

test('a new salt (what disable forgets) gives an id that shares nothing with the one before', (t) => {
  const root = makeRoot(t, { 'etc/machine-id': `${MACHINE_ID}\n` });
  const before = distinctId(root, 'daemon-a', salted(SALT));
  const after = distinctId(root, 'daemon-a', salted('b'.repeat(64)));
  assert.notEqual(after, before);
  // Nothing a person could match up: not even an 8-hex-digit group in common.
  assert.ok(after.split('-').every((group) => group.length < 8 || !before.includes(group)));
});

test('the salt and the product key the hash together: neither alone reproduces it', () => {
  // HMAC-SHA256(key = "<product>\n<salt>", machine id), shaped as systemd shapes application ids.
  assert.notEqual(appSpecificId(MACHINE_ID, 'example-daemon', SALT), appSpecificId(MACHINE_ID, 'example-daemon', ''));
  assert.notEqual(appSpecificId(MACHINE_ID, 'example-daemon', SALT), appSpecificId(MACHINE_ID, 'example-daemonx', SALT));
});

test('without a usable machine id (an empty one in an image) the stored random id is used', (t) => {
  const root = makeRoot(t, { 'etc/machine-id': '\n' });
  const sources = { salt: () => assert.fail('no machine id: no salt is needed'), randomId: () => '11111111-2222-4333-8444-555555555555' };
  assert.equal(distinctId(root, 'p', sources), '11111111-2222-4333-8444-555555555555');
});
