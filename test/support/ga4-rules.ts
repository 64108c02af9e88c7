/**
 * GA4's Measurement Protocol rules, written from Google's documents, not from src/: the Measurement
 * Protocol reference and "Send Measurement Protocol events" (limits: 25 events a request, 25
 * params an event, names up to 40 characters, values up to 100, a body under 130 kB, events up to
 * 72 hours old), and "Event naming rules" (letters, digits, underscores, a letter first; reserved
 * names and prefixes). GA4 answers 2xx whatever it gets and drops what breaks these; this is what
 * /debug/mp/collect would tell. Returns every rule a request breaks.
 */
const RESERVED_EVENTS = `ad_activeview ad_click ad_exposure ad_impression ad_query ad_reward adunit_exposure app_background app_clear_data
  app_exception app_install app_remove app_store_refund app_store_subscription_cancel app_store_subscription_convert app_store_subscription_renew
  app_update app_upgrade click dynamic_link_app_open dynamic_link_app_update dynamic_link_first_open error file_download firebase_campaign
  firebase_in_app_message_action firebase_in_app_message_dismiss firebase_in_app_message_impression first_open first_visit form_start form_submit
  in_app_purchase notification_dismiss notification_foreground notification_open notification_receive notification_send os_update page_view
  screen_view scroll session_start user_engagement video_complete video_progress video_start view_search_results`.split(/\s+/);
const RESERVED_PARAMS = 'firebase_conversion cid currency customer_id customerid dclid gclid session_id sessionid sfmc_id sid srsltid uid user_id userid'.split(' ');
const RESERVED_PREFIXES = ['_', 'firebase_', 'ga_', 'google_', 'gtag.'];
const BODY_FIELDS = new Set(['client_id', 'user_id', 'timestamp_micros', 'user_properties', 'user_data', 'consent', 'non_personalized_ads', 'user_location', 'device', 'ip_override', 'validation_behavior', 'events']);
const EVENT_FIELDS = new Set(['name', 'params', 'timestamp_micros']);

function nameProblems(what: string, name: string, reserved: readonly string[]): string[] {
  const problems: string[] = [];
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) problems.push(`${what} "${name}": letters, digits and _ only, a letter first`);
  if (name.length > 40) problems.push(`${what} "${name}" is longer than 40 characters`);
  if (reserved.includes(name)) problems.push(`${what} "${name}" is reserved`);
  if (RESERVED_PREFIXES.some((prefix) => name.startsWith(prefix))) problems.push(`${what} "${name}" has a reserved prefix`);
  return problems;
}

export function ga4Violations(url: URL, bodyText: string, now: Date): string[] {
  const problems: string[] = [];
  if (url.pathname !== '/mp/collect') problems.push(`path ${url.pathname} is not /mp/collect`);
  if (!url.searchParams.get('measurement_id')) problems.push('no measurement_id in the URL');
  if (!url.searchParams.get('api_secret')) problems.push('no api_secret in the URL');
  if (Buffer.byteLength(bodyText) > 130_000) problems.push('body over 130 kB');
  const body = JSON.parse(bodyText);
  for (const key of Object.keys(body)) if (!BODY_FIELDS.has(key)) problems.push(`unknown body field ${key}`);
  if (typeof body.client_id !== 'string' || body.client_id === '') problems.push('no client_id');
  if (!Array.isArray(body.events) || body.events.length < 1 || body.events.length > 25) return [...problems, 'events must hold 1 to 25 events'];
  for (const event of body.events) {
    for (const key of Object.keys(event)) if (!EVENT_FIELDS.has(key)) problems.push(`unknown event field ${key}`);
    problems.push(...nameProblems('event name', String(event.name), RESERVED_EVENTS));
    const params = event.params ?? {};
    if (Object.keys(params).length > 25) problems.push(`${event.name}: ${Object.keys(params).length} params, over 25`);
    for (const [name, value] of Object.entries(params)) {
      problems.push(...nameProblems(`${event.name} param`, name, RESERVED_PARAMS));
      if (typeof value === 'string' ? [...value].length > 100 : !(typeof value === 'number' && Number.isFinite(value))) problems.push(`${event.name} param ${name}: a string up to 100 characters or a number, got ${JSON.stringify(value)}`);
    }
    if (event.timestamp_micros !== undefined) {
      const ageMs = now.getTime() - event.timestamp_micros / 1000;
      if (!Number.isSafeInteger(event.timestamp_micros) || ageMs < 0 || ageMs > 72 * 3600 * 1000) problems.push(`${event.name}: timestamp_micros ${event.timestamp_micros} is not within the last 72 hours`);
    }
  }
  return problems;
}
