/**
 * A plain `X.Y.Z` exactly as semver prints it: no leading zeros, and no number past 15 digits
 * (below 2^53, where semver would refuse it). For it, semver's answer is the version itself.
 */
const PLAIN_SEMVER = /^(?:0|[1-9]\d{0,14})\.(?:0|[1-9]\d{0,14})\.(?:0|[1-9]\d{0,14})$/;

/**
 * The product's version as given, and as semver when it can be read as one: "v1.44.0-12-gabc"
 * is valid after cleaning, "1.44" coerces to "1.44.0", "nightly" is unknown.
 */
export function productVersionProperties(raw: string | undefined) {
  const semver = raw === undefined ? null : PLAIN_SEMVER.test(raw) ? raw : asSemver(raw);
  return { product_version: raw ?? 'unknown', product_version_semver: semver ?? 'unknown' };
}

function asSemver(raw: string): string | null {
  // Loaded only here: semver compiles its regular expressions when loaded (~1 ms), which an
  // absent or plain version never needs (issue 17).
  const clean = require('semver/functions/clean.js') as typeof import('semver/functions/clean.js');
  const coerce = require('semver/functions/coerce.js') as typeof import('semver/functions/coerce.js');
  return clean(raw, { loose: true }) ?? coerce(raw)?.version ?? null;
}
