import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { detectSystem } from '../../../../../src/after-consent/collect/detect/index.ts';
import { PROJECT_DIR } from '../../../../support/helpers.ts';

/**
 * One test per fixture root (real files of real systems; see test/fixtures/SOURCES.md). Each
 * expected.json lists every detection property, so a signal that fires where it should not
 * breaks the other fixtures too.
 */
const ROOTS = path.join(PROJECT_DIR, 'test/fixtures/roots');
const cases = readdirSync(ROOTS).sort();
const platform = { type: 'Linux', release: 'host-kernel-must-not-be-used', machine: 'x86_64' };

test('the corpus covers distributions, hypervisors, container runtimes and their combinations', () => {
  const count = (prefix: string) => cases.filter((name) => name.startsWith(prefix)).length;
  assert.ok(count('os-') >= 25, `os-* cases: ${count('os-')}`);
  assert.ok(count('virt-') >= 10, `virt-* cases: ${count('virt-')}`);
  assert.ok(count('ct-') >= 10, `ct-* cases: ${count('ct-')}`);
  assert.ok(count('combo-') >= 5, `combo-* cases: ${count('combo-')}`);
});

for (const name of cases) {
  test(`detects ${name} as its expected.json says`, () => {
    const expected = JSON.parse(readFileSync(path.join(ROOTS, name, 'expected.json'), 'utf8'));
    const { system_architecture, ...detected } = detectSystem({ root: path.join(ROOTS, name, 'root'), env: {}, platform });
    assert.equal(system_architecture, 'x86_64');
    assert.deepEqual(detected, expected);
  });
}
