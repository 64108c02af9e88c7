/**
 * The product's version as given, and as semver when it can be read as one: "v1.44.0-12-gabc"
 * is valid after cleaning, "1.44" coerces to "1.44.0", "nightly" is unknown.
 */
export function productVersionProperties(raw: string | undefined) {
  // Loaded on first use: semver compiles its regular expressions when loaded (~1 ms).
  const clean = require('semver/functions/clean.js') as typeof import('semver/functions/clean.js');
  const coerce = require('semver/functions/coerce.js') as typeof import('semver/functions/coerce.js');
  const semver = raw === undefined ? null : clean(raw, { loose: true }) ?? coerce(raw)?.version ?? null;
  return { product_version: raw ?? 'unknown', product_version_semver: semver ?? 'unknown' };
}
