import type { Stored } from '../../store/outbox.ts';
import { batchUrl, captureUrl } from '../../../shared/urls.ts';
import type { Sink } from './sink.ts';

/**
 * A full outbox (1,000 events, 4 MB) goes in one request: PostHog documents no limit on the count
 * in a /batch/ request, and takes a body up to 20 MB; 5 MB of stored events stays a quarter of that.
 */
const BATCH_MAX_EVENTS = 1000;
const BATCH_MAX_BYTES = 5 * 1024 * 1024;
/** A stored text that holds one carries it as whitespace: what the log shows must stay one line. */
const LINE_BREAK = /[\r\n]/;

/**
 * PostHog's capture API (CONTRACT.md "Payload"): a new event alone to /capture/ as it is stored;
 * queued events gzipped to /batch/ with the key in the envelope and `sent_at` to correct a wrong
 * host clock; one by one to /capture/ where the receiver has no /batch/.
 */
export function posthogSink(endpoint: URL): Sink {
  return {
    name: 'posthog',
    maxEvents: BATCH_MAX_EVENTS,
    maxBytes: BATCH_MAX_BYTES,
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
    request(stored, { single, now }) {
      if (single) {
        const text = JSON.stringify(stored[0].event);
        return { url: captureUrl(endpoint), body: text, gzip: false, headers: {}, logged: [text] };
      }
      const { body, logged } = batchBody(stored, now);
      // Loaded on first use: only a batch needs it, and a --background caller never sends one.
      const { gzipSync } = require('node:zlib') as typeof import('node:zlib');
      return { url: batchUrl(endpoint), body: gzipSync(body), gzip: true, headers: {}, logged };
    },
  };
}

/**
 * `{"api_key","sent_at","batch":[...]}` written straight into one buffer, each event without its
 * key. An event stored as this tool writes it (JSON.stringify's text: the key first, one line)
 * goes as its stored text with the key cut off, the same bytes JSON.stringify would make of it
 * again; any other text (written by hand, or by an older build in another order) is written anew.
 * So a flush holds no second copy of its events as objects or as a string, only the buffer.
 */
function batchBody(stored: readonly Stored[], now: Date): { body: Buffer; logged: string[] } {
  const key = stored[0].event.api_key;
  const keyMember = `{"api_key":${JSON.stringify(key)},`;
  const head = `${keyMember}"sent_at":${JSON.stringify(now.toISOString())},"batch":[`;
  const logged: string[] = [];
  const members: string[] = [];
  for (const { event, text } of stored) {
    if (text.startsWith(keyMember) && !LINE_BREAK.test(text)) {
      logged.push(text);
      members.push(text.slice(keyMember.length));
    } else {
      const { api_key: _key, ...rest } = event;
      logged.push(JSON.stringify(event));
      members.push(JSON.stringify(rest).slice(1));
    }
  }
  // Each member is an object's text without its `{`: one byte more each, and a comma between.
  const size = Buffer.byteLength(head) + members.reduce((sum, member) => sum + 1 + Buffer.byteLength(member), 0) + Math.max(0, members.length - 1) + 2;
  const body = Buffer.allocUnsafe(size);
  let at = body.write(head);
  members.forEach((member, i) => {
    at += body.write(i === 0 ? '{' : ',{', at);
    at += body.write(member, at);
  });
  body.write(']}', at);
  return { body, logged };
}
