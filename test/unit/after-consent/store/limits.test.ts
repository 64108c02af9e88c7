import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { claimSlot } from '../../../../src/after-consent/store/limits.ts';

const HOUR = 3_600_000;
const NOW = 500_000 * HOUR + 1234;

function slots(t: TestContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-limits-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a kind gets its hourly limit of slots, then none, while other kinds keep theirs', (t) => {
  const dir = slots(t);
  assert.deepEqual([1, 2, 3, 4].map(() => claimSlot(dir, 'fatal', NOW, 3)), [true, true, true, false]);
  assert.equal(claimSlot(dir, 'stop', NOW, 3), true);
  assert.equal(claimSlot(dir, 'fatal', NOW + HOUR, 3), true, 'the next clock hour starts again');
});

test('slots of hours gone by are removed; files that are not slots of ours are left alone', (t) => {
  const dir = slots(t);
  for (let n = 0; n < 3; n++) claimSlot(dir, 'start', NOW - 2 * HOUR, 3);
  writeFileSync(path.join(dir, 'notes.txt'), '');
  claimSlot(dir, 'start', NOW, 3);
  assert.deepEqual(readdirSync(dir).sort(), ['notes.txt', `start.${Math.floor(NOW / HOUR)}.0`]);
});

test('a clock before 1970 counts as hour 0 and still meets the limit', (t) => {
  const dir = slots(t);
  assert.deepEqual([1, 2, 3].map(() => claimSlot(dir, 'fatal', -5 * HOUR, 2)), [true, true, false]);
});
