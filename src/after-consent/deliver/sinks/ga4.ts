import type { OutboxEvent } from '../../store/outbox.ts';
import { DEFAULT_MAX_BYTES, jsonRequest, type Sink } from './sink.ts';

/**
 * Google Analytics 4's Measurement Protocol: `{client_id, events: [{name, params,
 * timestamp_micros}]}` POSTed to `<endpoint>/mp/collect?measurement_id=..&api_secret=..`.
 * GA4 answers 2xx to everything, and drops what breaks its rules without a word, so every event
 * is mapped to fit them here and checked (problem()) before it is queued and before it is sent.
 * The mapping of every property is in docs/sinks.md; keep the two together.
 */

export const GA4_MAX_EVENTS = 25;
export const GA4_MAX_PARAMS = 25;
export const GA4_MAX_NAME_LENGTH = 40;
export const GA4_MAX_VALUE_LENGTH = 100;
export const GA4_MAX_BODY_BYTES = 130_000;
/** GA4 takes events up to 72 hours old; older ones are dropped silently. Kept back: an hour for clocks and the request. */
const MAX_AGE_MS = 71 * 60 * 60 * 1000;

/** The machine's id: GA4's client_id, not a parameter. */
const CLIENT_ID = 'distinct_id';
/**
 * Shared properties GA4 gets, in this order; the rest of the shared ones are left out (see
 * docs/sinks.md) so that the event's own properties, the most of any event (fatal: 8), and
 * `event_id` fit in GA4's 25 parameters.
 */
export const GA4_SHARED_PARAMS = [
  'product',
  'product_version',
  'schema_version',
  'host_os_id',
  'host_os_version_id',
  'container_os_id',
  'container_os_version_id',
  'system_kernel_name',
  'system_kernel_version',
  'system_architecture',
  'system_virtualization',
  'system_container',
  'host_is_k8s_node',
  'ci_name',
  'queue_dropped',
  'suppressed_events',
] as const;
/** Shared properties GA4 does not get: PostHog's own, the detection methods, the long forms of what is kept, and `ci` (ci_name says it). */
export const GA4_LEFT_OUT = [
  '$ip',
  '$process_person_profile',
  'product_version_semver',
  'host_os_name',
  'host_os_id_like',
  'host_os_version',
  'host_os_detection',
  'container_os_name',
  'container_os_id_like',
  'container_os_version',
  'container_os_detection',
  'system_virt_detection',
  'system_container_detection',
  'ci',
] as const;
const SHARED = new Set<string>([CLIENT_ID, ...GA4_SHARED_PARAMS, ...GA4_LEFT_OUT]);
const LEFT_OUT = new Set<string>(GA4_LEFT_OUT);

/** GA4's reserved event names (Measurement Protocol reference and "Event naming rules"), web and app streams. */
const RESERVED_EVENT_NAMES = new Set([
  'ad_activeview', 'ad_click', 'ad_exposure', 'ad_impression', 'ad_query', 'ad_reward', 'adunit_exposure', 'app_background', 'app_clear_data',
  'app_exception', 'app_install', 'app_remove', 'app_store_refund', 'app_store_subscription_cancel', 'app_store_subscription_convert',
  'app_store_subscription_renew', 'app_update', 'app_upgrade', 'click', 'dynamic_link_app_open', 'dynamic_link_app_update', 'dynamic_link_first_open',
  'error', 'file_download', 'firebase_campaign', 'firebase_in_app_message_action', 'firebase_in_app_message_dismiss', 'firebase_in_app_message_impression',
  'first_open', 'first_visit', 'form_start', 'form_submit', 'in_app_purchase', 'notification_dismiss', 'notification_foreground', 'notification_open',
  'notification_receive', 'notification_send', 'os_update', 'page_view', 'screen_view', 'scroll', 'session_start', 'user_engagement', 'video_complete',
  'video_progress', 'video_start', 'view_search_results',
]);
const RESERVED_PARAM_NAMES = new Set(['firebase_conversion', 'cid', 'customer_id', 'customerid', 'dclid', 'gclid', 'session_id', 'sessionid', 'sfmc_id', 'sid', 'srsltid', 'uid', 'user_id', 'userid']);
const RESERVED_PREFIX = /^(_|ga_|google_|firebase_|gtag\.)/;
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

export type Ga4Value = string | number;
export interface Ga4Event {
  name: string;
  params: Record<string, Ga4Value>;
  timestamp_micros: number;
}

/** `command-start` -> `command_start`: what GA4 allows in a name, within its length. */
export function ga4Name(name: string): string {
  const mapped = name.replace(/[^A-Za-z0-9_]/g, '_');
  return (/^[A-Za-z]/.test(mapped) ? mapped : `e_${mapped}`).slice(0, GA4_MAX_NAME_LENGTH);
}

/** At most 100 characters, cut by code points so no surrogate pair is split. */
function short(text: string): string {
  return text.length <= GA4_MAX_VALUE_LENGTH ? text : Array.from(text).slice(0, GA4_MAX_VALUE_LENGTH).join('');
}

/** GA4 keeps strings and numbers: a boolean becomes "true"/"false", a list its items joined with ",". */
export function ga4Value(value: unknown): Ga4Value {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return short(value.map(String).join(','));
  return short(typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));
}

export function ga4Event(event: OutboxEvent): Ga4Event {
  const { properties } = event;
  const own = Object.keys(properties).filter((key) => !SHARED.has(key) && !LEFT_OUT.has(key));
  const params: Record<string, Ga4Value> = { event_id: event.uuid };
  for (const key of [...own, ...GA4_SHARED_PARAMS]) {
    if (properties[key] !== undefined) params[ga4Name(key)] = ga4Value(properties[key]);
  }
  return { name: ga4Name(event.event), params, timestamp_micros: Date.parse(event.timestamp) * 1000 };
}

export function ga4Body(events: readonly OutboxEvent[]): { client_id: string; events: Ga4Event[] } {
  return { client_id: String(events[0].properties[CLIENT_ID]), events: events.map(ga4Event) };
}

/** What GA4 would drop of this mapped event, checked on the body it would really get. */
function ga4Problem(event: OutboxEvent, now: Date): string | undefined {
  const clientId = event.properties[CLIENT_ID];
  if (typeof clientId !== 'string' || clientId === '') return 'it has no distinct_id for GA4\'s client_id';
  const mapped = ga4Event(event);
  if (!NAME.test(mapped.name) || RESERVED_EVENT_NAMES.has(mapped.name) || RESERVED_PREFIX.test(mapped.name)) return `"${mapped.name}" is not an event name GA4 takes`;
  const names = Object.keys(mapped.params);
  if (names.length > GA4_MAX_PARAMS) return `${names.length} parameters, GA4 takes ${GA4_MAX_PARAMS}`;
  const badName = names.find((name) => !NAME.test(name) || name.length > GA4_MAX_NAME_LENGTH || RESERVED_PARAM_NAMES.has(name) || RESERVED_PREFIX.test(name));
  if (badName !== undefined) return `"${badName}" is not a parameter name GA4 takes`;
  if (now.getTime() - Date.parse(event.timestamp) > MAX_AGE_MS) return 'it is older than the 72 hours GA4 takes';
  if (Buffer.byteLength(JSON.stringify(ga4Body([event]))) > GA4_MAX_BODY_BYTES) return 'its body is larger than GA4 takes';
  return undefined;
}

/** `<endpoint>/mp/collect`; a vendor's own path (a server-side tagging proxy) is used as given. */
export function collectUrl(endpoint: URL): URL {
  const url = new URL(endpoint.href);
  if (url.pathname === '/') url.pathname = '/mp/collect';
  return url;
}

export function ga4Sink(endpoint: URL, measurementId: string, apiSecret: string): Sink {
  const shown = collectUrl(endpoint);
  shown.searchParams.set('measurement_id', measurementId);
  const url = new URL(shown.href);
  url.searchParams.set('api_secret', apiSecret);
  return {
    name: 'ga4',
    maxEvents: GA4_MAX_EVENTS,
    maxBytes: DEFAULT_MAX_BYTES,
    shownUrl: shown,
    singleFallback: false,
    problem: ga4Problem,
    // One client_id per request: events of an id forgotten and made anew go in a request of their own.
    batchKey: (event) => String(event.properties[CLIENT_ID]),
    request: (stored) => jsonRequest(url, ga4Body(stored.map(({ event }) => event))),
  };
}
