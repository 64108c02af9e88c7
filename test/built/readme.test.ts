import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { captureSchema } from '../../src/after-consent/collect/properties.ts';
import { PROJECT_DIR } from '../support/helpers.ts';

/**
 * The README's "What we collect and why" table names exactly the properties the published
 * schema lists (`schema`, src/after-consent/collect/properties.ts): the same table toCapture refuses anything
 * outside of, and test/built/schema.test.ts validates every event every command sends against.
 */
test('the README "What we collect and why" table lists exactly the properties of the published schema', () => {
  const readme = readFileSync(path.join(PROJECT_DIR, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('<!-- properties:start'), readme.indexOf('<!-- properties:end'));
  const documented = new Set(
    table
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .flatMap((line) => [...line.split('|')[1].matchAll(/`([^`]+)`/g)].map((m) => m[1])),
  );
  const schema = captureSchema('example-daemon') as { properties: { properties: { properties: Record<string, unknown> } } };
  assert.deepEqual([...documented].sort(), Object.keys(schema.properties.properties.properties).sort());
});
