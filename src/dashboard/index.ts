/**
 * The dashboard channel: what a daemon's web page sends, under the consent its backend gives
 * (CONTRACT.md "Dashboard channel"). Built into dist/anonymous-statistics-dashboard.js, an ES
 * module with no imports. Loading it does nothing; startDashboardTelemetry() decides once
 * whether anything may ever be sent, and every way of saying no returns three methods that do
 * nothing: no request, no cookie, no storage, no timer, no listener.
 *
 * What it sends is built from the consent document and constants only. The page's URL, host,
 * path, referrer, title, screen and user agent never enter an event; the request itself carries
 * no cookie and no Referer (fetch with `credentials: 'omit'`, `referrerPolicy: 'no-referrer'`).
 */
import { createScrubber, cut } from '../shared/scrub.ts';
import { batchUrl } from '../shared/urls.ts';
import type { DashboardConsent } from '../shared/consent-document.ts';
import { readConsent } from './consent.ts';

export type { DashboardConsent } from '../shared/consent-document.ts';

export interface DashboardTelemetry {
  /** A view of the dashboard was shown: `$pageview` with `dashboard_page` set to `name`. */
  pageview(name: string): void;
  /** A person did something: `dashboard_action` with `dashboard_action` set to `name`. */
  action(name: string): void;
  /** Consent withdrawn: what is queued is dropped and nothing more is sent. */
  stop(): void;
}

export interface DashboardOptions {
  /** How long an event waits for others to share its request (default 1000 ms; 0 to 60000). */
  flushAfterMs?: number;
  /** Events kept while the endpoint cannot be reached; the oldest go first (default 50; 1 to 500). */
  maxQueued?: number;
  /** Told, one line each, why the module stays silent, what it dropped and what failed. */
  debug?: (line: string) => void;
}

/** What PostHog would fill from the page's address: fixed, so no URL, host or path leaves it. */
const PAGE_PROPERTIES = { $current_url: 'https://dashboard.invalid/', $host: 'dashboard.invalid', $pathname: '/' } as const;
const DEFAULT_FLUSH_AFTER_MS = 1000;
const DEFAULT_MAX_QUEUED = 50;
/** Browsers allow 64 KiB for all keepalive requests in flight: a full queue fits in two requests. */
const MAX_BATCH = 25;
const MAX_RETRY_DELAY_MS = 5 * 60 * 1000;

interface BrowserEvent {
  event: string;
  uuid: string;
  timestamp: string;
  properties: Record<string, unknown>;
}

const SILENT: DashboardTelemetry = Object.freeze({ pageview() {}, action() {}, stop() {} });

export function startDashboardTelemetry(consent: unknown, options?: DashboardOptions): DashboardTelemetry {
  let log = (_line: string): void => undefined;
  try {
    const debug = options?.debug;
    if (typeof debug === 'function') {
      log = (line) => {
        try {
          debug(`anonymous-statistics: ${line}`);
        } catch {
          // the page's logger failing is no reason to fail the page
        }
      };
    }
    const reading = readConsent(consent);
    const refusal = 'refusal' in reading ? reading.refusal : browserRefusal();
    if (refusal !== undefined || !('consent' in reading)) {
      log(`silent: ${refusal}`);
      return SILENT;
    }
    return open(reading.consent, limitsFrom(options), log);
  } catch (error) {
    log(`silent: ${String(error)}`);
    return SILENT;
  }
}

/** The browser's own signals, honoured like the host's opt-outs; and what sending needs. */
function browserRefusal(): string | undefined {
  const nav = typeof navigator === 'undefined' ? undefined : (navigator as Navigator & { globalPrivacyControl?: unknown });
  // "yes": Firefox before 32; window.doNotTrack: old Safari and IE.
  if (nav?.doNotTrack === '1' || nav?.doNotTrack === 'yes' || (globalThis as { doNotTrack?: unknown }).doNotTrack === '1') return 'the browser sends Do Not Track';
  if (nav?.globalPrivacyControl === true) return 'the browser sends Global Privacy Control';
  if (typeof fetch !== 'function' || typeof crypto === 'undefined' || typeof crypto.getRandomValues !== 'function') return 'this browser has no fetch or crypto.getRandomValues';
  return undefined;
}

function limitsFrom(options: DashboardOptions | undefined): { flushAfterMs: number; maxQueued: number } {
  return {
    flushAfterMs: wholeNumber(options?.flushAfterMs, 0, 60_000, DEFAULT_FLUSH_AFTER_MS),
    maxQueued: wholeNumber(options?.maxQueued, 1, 500, DEFAULT_MAX_QUEUED),
  };
}

function wholeNumber(value: unknown, min: number, max: number, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : fallback;
}

function open(consent: DashboardConsent, limits: { flushAfterMs: number; maxQueued: number }, log: (line: string) => void): DashboardTelemetry {
  const url = batchUrl(new URL(consent.endpoint)).href;
  const scrub = pageScrubber();
  const shared = {
    distinct_id: consent.distinct_id,
    $ip: '127.0.0.1',
    $process_person_profile: false,
    ...PAGE_PROPERTIES,
    product: consent.product,
    product_version: consent.product_version,
    schema_version: consent.schema_version,
  };
  let queue: BrowserEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  let stopped = false;

  const guarded =
    <A extends unknown[]>(action: (...args: A) => void) =>
    (...args: A): void => {
      try {
        action(...args);
      } catch (error) {
        log(`internal error: ${String(error)}`);
      }
    };

  const record = (event: string, property: string, name: unknown): void => {
    if (stopped) return;
    if (typeof name !== 'string' || name.trim() === '') {
      log(`ignored ${event}: its name must be a non-empty string`);
      return;
    }
    const refusal = browserRefusal();
    if (refusal !== undefined) {
      log(`stopped: ${refusal}`);
      stop();
      return;
    }
    queue.push({ event, uuid: uuidV4(), timestamp: new Date().toISOString(), properties: { ...shared, [property]: cut(scrub(name)) } });
    keepNewest();
    schedule();
  };

  const keepNewest = (): void => {
    const excess = queue.length - limits.maxQueued;
    if (excess <= 0) return;
    queue.splice(0, excess);
    log(`dropped the ${excess} oldest events: at most ${limits.maxQueued} are kept`);
  };

  const retryDelay = (): number => Math.min(MAX_RETRY_DELAY_MS, Math.max(limits.flushAfterMs, 100) * 2 ** failures);

  const schedule = (): void => {
    if (timer === undefined && queue.length > 0) timer = setTimeout(onTimer, failures === 0 ? limits.flushAfterMs : retryDelay());
  };

  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    while (!stopped && queue.length > 0) send(queue.splice(0, MAX_BATCH));
  };

  const send = (batch: BrowserEvent[]): void => {
    const body = JSON.stringify({ api_key: consent.api_key, sent_at: new Date().toISOString(), batch });
    let request: Promise<unknown>;
    try {
      request = fetch(url, {
        method: 'POST',
        body,
        // Outlives the page, as sendBeacon does; unlike sendBeacon, it can leave out cookies and the Referer.
        keepalive: true,
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
        // A text/plain body and no custom header make a simple request: no preflight, and the
        // answer (never read) needs no CORS headers. A refused connection still rejects.
        mode: 'no-cors',
        cache: 'no-store',
      });
    } catch (error) {
      request = Promise.reject(error);
    }
    request.then(
      () => {
        failures = 0;
      },
      guarded((error: unknown) => {
        if (stopped) return;
        failures += 1;
        // Back in front: they are older than anything queued since.
        queue = batch.concat(queue);
        keepNewest();
        log(`${batch.length} events not delivered (${String(error)}); ${queue.length} kept, next try in ${retryDelay()} ms`);
        schedule();
      }),
    );
  };

  const onTimer = guarded(flush);
  // The last moment a page is sure to run: whatever is queued goes now, back-off or not.
  const onPageHide = guarded(flush);
  const onVisibilityChange = guarded(() => {
    if (document.visibilityState === 'hidden') flush();
  });

  const stop = (): void => {
    stopped = true;
    queue = [];
    clearTimeout(timer);
    timer = undefined;
    removeEventListener('pagehide', onPageHide);
    document.removeEventListener('visibilitychange', onVisibilityChange);
    log('stopped: nothing more will be sent');
  };

  addEventListener('pagehide', onPageHide);
  document.addEventListener('visibilitychange', onVisibilityChange);
  return Object.freeze({
    pageview: guarded((name: string) => record('$pageview', 'dashboard_page', name)),
    action: guarded((name: string) => record('dashboard_action', 'dashboard_action', name)),
    stop: guarded(stop),
  });
}

/**
 * The backend's scrubber, for the one local name a browser knows: the host name the dashboard
 * was reached by (http://db-prod-3:19999 must not send "db-prod-3" inside an action's name). It
 * is only matched against, never sent. An address needs no entry: the generic rules catch it.
 */
function pageScrubber(): (text: string) => string {
  const host = typeof location === 'undefined' ? '' : location.hostname;
  const isAddress = /^[\d.]+$/.test(host) || host.startsWith('[');
  return createScrubber(isAddress ? [] : [host, host.split('.')[0]], []);
}

/** crypto.randomUUID() exists only in secure contexts; a LAN dashboard on plain http is none. */
function uuidV4(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
