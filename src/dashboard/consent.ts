import { MAX_TEXT_LENGTH } from '../shared/scrub.ts';
import { endpointProblem } from '../shared/endpoint-url.ts';
import { UUID_PATTERN } from '../shared/uuid.ts';
import type { DashboardConsent } from '../shared/consent-document.ts';

export type ConsentReading = { consent: DashboardConsent } | { refusal: string };

/** The command cuts what it prints as it cuts free text: anything longer was not made by it. */
function shortText(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '' && value.length <= MAX_TEXT_LENGTH;
}

/**
 * Reads a consent document (the object, or the JSON text the command printed). Anything but a
 * whole, well-formed yes is a no: a missing, truncated or hand-edited document keeps the page
 * silent, as doubt does everywhere else in this project.
 */
export function readConsent(document: unknown): ConsentReading {
  let parsed = document;
  if (typeof document === 'string') {
    try {
      parsed = JSON.parse(document);
    } catch {
      return { refusal: 'the consent document is not JSON' };
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { refusal: 'no consent document' };
  const given = parsed as Record<string, unknown>;
  if (given.enabled !== true) return { refusal: 'telemetry is off on the host (consent.enabled is not true)' };
  const { distinct_id, endpoint, api_key, product, product_version, schema_version } = given;
  if (typeof distinct_id !== 'string' || !UUID_PATTERN.test(distinct_id)) return { refusal: 'consent.distinct_id is not the backend\'s id (a UUID)' };
  if (!shortText(api_key)) return { refusal: 'consent.api_key is missing' };
  if (!shortText(product)) return { refusal: 'consent.product is missing' };
  if (!shortText(product_version)) return { refusal: 'consent.product_version is missing' };
  if (typeof schema_version !== 'number' || !Number.isInteger(schema_version) || schema_version < 1) return { refusal: 'consent.schema_version is not a positive whole number' };
  if (typeof endpoint !== 'string') return { refusal: 'consent.endpoint is missing' };
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return { refusal: 'consent.endpoint is not a URL' };
  }
  const problem = endpointProblem(url);
  if (problem) return { refusal: `consent.endpoint ${problem}` };
  // A copy of the known fields only: nothing else a document carries can reach an event.
  return { consent: { enabled: true, distinct_id, endpoint: url.href, api_key, product, product_version, schema_version } };
}
