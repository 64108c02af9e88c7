import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appSpecificId, distinctId } from '../src/collect/identity.ts';
import { makeRoot } from './helpers.ts';

const MACHINE_ID = '4c4c4544004b4e10805ac4c04f4e4d33';
const noRandomId = () => assert.fail('a machine id was there: no random id is needed');

test('with a machine id: a keyed hash shaped as a UUID v4, stable, app-specific, and not the raw id', (t) => {
  const root = makeRoot(t, { 'etc/machine-id': `${MACHINE_ID}\n` });
  const id = distinctId(root, 'daemon-a', noRandomId);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(id, distinctId(root, 'daemon-a', noRandomId));
  assert.notEqual(id, appSpecificId(MACHINE_ID, 'daemon-b'));
  assert.ok(!id.replaceAll('-', '').includes(MACHINE_ID.slice(0, 12)));
});

test('the app-specific id is the one 0.1 derived, so an upgrade keeps every machine counted once', () => {
  // Computed by 0.1's uuidV4FromBytes(HMAC-SHA256(key=product, machine id)).
  assert.equal(appSpecificId(MACHINE_ID, 'example-daemon'), 'b028ee8a-92d5-4c72-bdf3-9e4c5517453a');
});

test('without a usable machine id (an empty one in an image) the stored random id is used', (t) => {
  const root = makeRoot(t, { 'etc/machine-id': '\n' });
  assert.equal(distinctId(root, 'p', () => '11111111-2222-4333-8444-555555555555'), '11111111-2222-4333-8444-555555555555');
});
