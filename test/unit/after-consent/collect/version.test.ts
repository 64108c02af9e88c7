import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import clean from 'semver/functions/clean.js';
import coerce from 'semver/functions/coerce.js';
import { productVersionProperties } from '../../../../src/after-consent/collect/version.ts';

const VERSION_MODULE = require.resolve('../../../../src/after-consent/collect/version.ts');

/** What every version went through before plain ones skipped semver: the answer to match. */
function bySemver(raw: string): string {
  return clean(raw, { loose: true }) ?? coerce(raw)?.version ?? 'unknown';
}

const digits = fc.stringMatching(/^\d{1,18}$/);
/** Near the shortcut's edge: leading zeros, 15 to 18 digits, a `v`, spaces, two or four parts, a suffix. */
const versionLike = fc
  .tuple(
    fc.constantFrom('', 'v', '=', ' ', 'V'),
    fc.array(digits, { minLength: 1, maxLength: 4 }),
    fc.constantFrom('', '-rc.1', '+build.5', '-12-gabc', ' ', '\n', '.', 'x'),
  )
  .map(([prefix, parts, suffix]) => `${prefix}${parts.join('.')}${suffix}`);

test('every version gets the answer semver gives, plain X.Y.Z ones without loading it', () => {
  fc.assert(
    fc.property(fc.oneof(versionLike, fc.string(), fc.string({ unit: 'grapheme-ascii' })), (raw) => {
      assert.deepEqual(productVersionProperties(raw), { product_version: raw, product_version_semver: bySemver(raw) });
    }),
    { numRuns: 20_000 },
  );
});

test('the edges of the plain form', () => {
  for (const raw of ['0.0.0', '1.2.3', '999999999999999.1.2', '9999999999999999.1.2', '01.2.3', '1.2.3.4', '1.2', 'v1.2.3', ' 1.2.3', '1.2.3\n', '1.2.3-rc.1', 'nightly']) {
    assert.equal(productVersionProperties(raw).product_version_semver, bySemver(raw), raw);
  }
  assert.deepEqual(productVersionProperties(undefined), { product_version: 'unknown', product_version_semver: 'unknown' });
});

test('semver is loaded for a version that needs it, and not for an absent or plain one', () => {
  // In a process of its own: this file loads semver for its reference answers.
  const probe = `
    const { productVersionProperties } = require(${JSON.stringify(VERSION_MODULE)});
    const semverLoaded = () => Object.keys(require.cache).some((file) => file.includes('/node_modules/semver/'));
    productVersionProperties(undefined);
    productVersionProperties('1.2.3');
    const before = semverLoaded();
    productVersionProperties('1.2');
    console.log(JSON.stringify([before, semverLoaded()]));`;
  const seen = execFileSync(process.execPath, ['--import', 'tsx', '-e', probe], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(seen), [false, true]);
});
