import clean from 'semver/functions/clean.js';
import coerce from 'semver/functions/coerce.js';

/**
 * The product's version as given, and as semver when it can be read as one: "v1.44.0-12-gabc"
 * is valid after cleaning, "1.44" coerces to "1.44.0", "nightly" is unknown.
 */
export function productVersionProperties(raw: string | undefined) {
  const semver = raw === undefined ? null : clean(raw, { loose: true }) ?? coerce(raw)?.version ?? null;
  return { product_version: raw ?? 'unknown', product_version_semver: semver ?? 'unknown' };
}
