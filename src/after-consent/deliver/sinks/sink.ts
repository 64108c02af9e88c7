import type { SinkName } from '../../../before-consent/config/vendor.ts';
import type { OutboxEvent, Stored } from '../../store/outbox.ts';

/**
 * A sink turns stored capture events (what the outbox keeps, whatever the sink) into requests
 * of one receiver's API. Delivery stays one: it asks the sink for a request, sends it, and
 * judges the answer; retries, back-off, caps and the budget are the same for every sink.
 */
export interface SinkRequest {
  url: URL;
  body: string | Buffer;
  gzip: boolean;
  headers: Readonly<Record<string, string>>;
  /** What the transparency log records: the bytes of the body as sent (PostHog's batch: each event, as before). */
  logged: readonly string[];
}

export interface Sink {
  name: SinkName;
  /** Events one request carries at most. */
  maxEvents: number;
  /** Stored bytes of the events one request carries at most (a lone event larger than this still goes alone). */
  maxBytes: number;
  /** Where events go, as status and --dry-run name it (no secret in it). */
  shownUrl: URL;
  /** A receiver without a batch path (404/405 to one) takes events one by one: PostHog's /capture/ beside /batch/. */
  singleFallback: boolean;
  /**
   * Why this receiver would refuse the event or drop it without a word, or undefined. Asked before
   * an event is queued and again before it is sent, so a body that cannot succeed never leaves.
   */
  problem(event: OutboxEvent, now: Date): string | undefined;
  /** Events of one request share this (PostHog: the key in the envelope; GA4: the client_id). */
  batchKey(event: OutboxEvent): string;
  /**
   * The request for these events, each with the text it is stored as; `single`: one event on its
   * own (a new one, or where there is no batch path).
   */
  request(events: readonly Stored[], options: { single: boolean; now: Date }): SinkRequest;
}

/** Well under any receiver's request size limit, where the sink knows of no larger one. */
export const DEFAULT_MAX_BYTES = 2 * 1024 * 1024;

/** One text line per request body: JSON.stringify never puts a raw line break in its output. */
export function jsonRequest(url: URL, body: unknown, headers: Readonly<Record<string, string>> = {}): SinkRequest {
  const text = JSON.stringify(body);
  return { url, body: text, gzip: false, headers, logged: [text] };
}
