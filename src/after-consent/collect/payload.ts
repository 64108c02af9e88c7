import type { DetectionProperties } from './detect/index.ts';
import type { EventProperties } from '../../before-consent/cli/events.ts';
import { isPropertyName, SCHEMA_VERSION } from './properties.ts';

export { SCHEMA_VERSION };

export interface CaptureEvent {
  api_key: string;
  event: string;
  uuid: string;
  timestamp: string;
  properties: Record<string, unknown> & { distinct_id: string };
}

export interface CaptureInput {
  apiKey: string;
  event: string;
  distinctId: string;
  product: string;
  version: { product_version: string; product_version_semver: string };
  system: DetectionProperties;
  eventProperties: EventProperties;
  /**
   * ci/ci_name: the run is under CI (ci-info's vendor name); queue_dropped: events the full
   * offline queue dropped; suppressed_events: events held back by the crash-loop limit.
   */
  automation: { ci: boolean; ci_name: string; queue_dropped: number; suppressed_events: number };
  uuid: string;
  timestamp: Date;
}

/**
 * The PostHog capture body. `$ip` is pinned to loopback so the receiver does not record the
 * sender's address, and `$process_person_profile: false` keeps PostHog from building a person
 * profile out of anonymous events.
 */
export function toCapture(input: CaptureInput): CaptureEvent {
  const properties = {
    distinct_id: input.distinctId,
    $ip: '127.0.0.1',
    $process_person_profile: false,
    product: input.product,
    ...input.version,
    schema_version: SCHEMA_VERSION,
    ...input.system,
    ...input.automation,
    ...input.eventProperties,
  };
  // What `schema` publishes is all that can leave: a property it does not list is a bug of ours.
  const unlisted = Object.keys(properties).find((name) => !isPropertyName(name));
  if (unlisted !== undefined) throw new Error(`property ${unlisted} is not in the published schema (src/after-consent/collect/properties.ts)`);
  return { api_key: input.apiKey, event: input.event, uuid: input.uuid, timestamp: input.timestamp.toISOString(), properties };
}
