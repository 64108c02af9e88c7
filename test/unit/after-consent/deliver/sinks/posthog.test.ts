import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { posthogSink } from '../../../../../src/after-consent/deliver/sinks/posthog.ts';
import type { OutboxEvent, Stored } from '../../../../../src/after-consent/store/outbox.ts';

/**
 * PostHog's /batch/ body is written from the events' stored texts: the same bytes as the
 * envelope written anew, whether a text is as this tool stores it or not.
 */

const NOW = new Date('2026-01-02T03:04:05.000Z');
const sink = posthogSink(new URL('http://127.0.0.1:9/'));

function eventNumber(i: number, properties: Record<string, unknown> = {}): OutboxEvent {
  return { api_key: 'phc_test', event: 'start', uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, timestamp: NOW.toISOString(), properties: { distinct_id: 'd', ...properties } };
}

/** What the batch body was before it was written from the stored texts: the envelope, written anew. */
function envelopeOf(events: readonly OutboxEvent[]): string {
  return JSON.stringify({ api_key: events[0].api_key, sent_at: NOW.toISOString(), batch: events.map(({ api_key: _key, ...rest }) => rest) });
}

function batch(stored: readonly Stored[]) {
  const request = sink.request(stored, { single: false, now: NOW });
  assert.equal(request.gzip, true);
  return { text: gunzipSync(request.body as Buffer).toString('utf8'), logged: request.logged };
}

test('events stored as this tool writes them go as their stored texts: the envelope written anew, byte for byte', () => {
  const events = [eventNumber(1, { message: 'naïve ✓ \u2028 "quoted"' }), eventNumber(2, { list: [1, 2.5, null], nested: { a: true } }), eventNumber(3)];
  const stored = events.map((event) => ({ event, text: JSON.stringify(event) }));
  const { text, logged } = batch(stored);
  assert.equal(text, envelopeOf(events));
  assert.deepEqual(logged, stored.map((s) => s.text), 'each event logged as stored');
});

test('a stored text not as this tool writes it (indented, the key not first, a line break) is written anew, and logged on one line', () => {
  const events = [eventNumber(1), eventNumber(2), eventNumber(3)];
  const { api_key: key, ...rest } = events[1];
  const stored = [
    { event: events[0], text: JSON.stringify(events[0], null, 2) },
    { event: events[1], text: JSON.stringify({ ...rest, api_key: key }) },
    { event: events[2], text: JSON.stringify(events[2]).replace(',"uuid"', ',\n"uuid"') },
  ];
  const { text, logged } = batch(stored);
  assert.equal(text, envelopeOf(events));
  assert.deepEqual(logged, events.map((event) => JSON.stringify(event)));
});

test('a lone event goes to /capture/ as JSON.stringify writes it, key included', () => {
  const event = eventNumber(1);
  const request = sink.request([{ event, text: JSON.stringify(event, null, 2) }], { single: true, now: NOW });
  assert.equal(request.url.pathname, '/capture/');
  assert.equal(request.body, JSON.stringify(event));
});
