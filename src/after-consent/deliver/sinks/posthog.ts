import type { OutboxEvent } from '../../store/outbox.ts';
import { batchUrl, captureUrl } from '../../../shared/urls.ts';
import type { Sink } from './sink.ts';

/** Batches stay well under PostHog's request size limit (20 MB); delivery also caps their bytes. */
const BATCH_MAX_EVENTS = 500;

/**
 * PostHog's capture API (CONTRACT.md "Payload"): a new event alone to /capture/ as it is stored;
 * queued events gzipped to /batch/ with the key in the envelope and `sent_at` to correct a wrong
 * host clock; one by one to /capture/ where the receiver has no /batch/.
 */
export function posthogSink(endpoint: URL): Sink {
  return {
    name: 'posthog',
    maxEvents: BATCH_MAX_EVENTS,
    shownUrl: captureUrl(endpoint),
    singleFallback: true,
    // PostHog refuses a whole request for one event without a key, a name or a distinct_id.
    problem: (event) => {
      if (typeof event.api_key !== 'string' || event.api_key.trim() === '') return 'it has no API key (PostHog refuses an event without one)';
      if (event.event === '') return 'it has no event name';
      return undefined;
    },
    // The key goes in the envelope: one key per request.
    batchKey: (event) => event.api_key,
    request(events, { single, now }) {
      if (single) {
        const text = JSON.stringify(events[0]);
        return { url: captureUrl(endpoint), body: text, gzip: false, headers: {}, logged: [text] };
      }
      const envelope = { api_key: events[0].api_key, sent_at: now.toISOString(), batch: events.map(({ api_key: _key, ...rest }) => rest) };
      // Loaded on first use: only a batch needs it, and a --background caller never sends one.
      const { gzipSync } = require('node:zlib') as typeof import('node:zlib');
      return { url: batchUrl(endpoint), body: gzipSync(JSON.stringify(envelope)), gzip: true, headers: {}, logged: events.map((event: OutboxEvent) => JSON.stringify(event)) };
    },
  };
}
