import assert from 'node:assert/strict';
import { test } from 'node:test';
import { onFirstUse } from '../../../src/shared/first-use.ts';

test('makes nothing until asked, then makes once and keeps it, an undefined result too', () => {
  let made = 0;
  const value = onFirstUse(() => ({ made: ++made }));
  assert.equal(made, 0);
  const first = value();
  assert.equal(value(), first);
  assert.equal(made, 1);

  let calls = 0;
  const nothing = onFirstUse(() => void calls++);
  assert.equal(nothing(), undefined);
  assert.equal(nothing(), undefined);
  assert.equal(calls, 1);
});
