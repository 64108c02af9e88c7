import type { Context } from '../config/context.ts';
import type { Settings } from '../config/settings.ts';
import { appendText } from '../store/files.ts';
import { recordHistory, type HistoryEntry } from '../store/history.ts';
import { capOutbox, claimWaiting, recoverAbandoned, release, settle, store, storeClaimed, waitingNames, type Item, type Outbox, type OutboxEvent } from '../store/outbox.ts';
import { readState, updateState, type State } from '../store/state.ts';
import type { StateDir } from '../store/state-dir.ts';
import { HttpError } from './errors.ts';
import { proxyFor } from './proxy.ts';
import { post } from './transport.ts';
import { batchUrl, captureUrl } from './urls.ts';

/**
 * Getting events to the receiver without ever holding the caller: a few jittered retries inside
 * the run's budget, then the outbox; a receiver that keeps failing is tried less and less often
 * (per endpoint, persisted), so a fleet does not stampede it when it comes back. Whatever the
 * receiver answers, no event it could still take is lost: a redirect or a 5xx leaves events
 * waiting, and a batch refused whole (PostHog refuses a whole request for one malformed event,
 * or a 413 for its size) is split until only the events it really refuses are dropped.
 */

export type Outcome = { kind: 'sent' | 'queued' | 'dropped'; reason: string; status?: number };

export interface Delivery {
  settings: Settings;
  ctx: Context;
  stateDir: StateDir;
  outbox: Outbox;
  /** Turns an event that --background stored unfinished into a whole capture event. */
  complete: (event: OutboxEvent) => OutboxEvent;
}

const ATTEMPTS_PER_RUN = 3;
const FIRST_RETRY_MS = 100;
/** Kept back from the budget for moving the event back to the outbox after the last attempt. */
const RESERVE_MS = 40;
const BACKOFF_BASE_MS = 30_000;
export const BACKOFF_MAX_MS = 6 * 60 * 60 * 1000;
/** Batches stay well under PostHog's request size limit (20 MB). */
const BATCH_MAX_EVENTS = 500;
const BATCH_MAX_BYTES = 2 * 1024 * 1024;

/** A redirect, 408, 429 and 5xx may succeed later; any other 4xx never will. */
function isRetryable(error: unknown): boolean {
  if (!(error instanceof HttpError)) return true;
  return error.status < 400 || error.status === 408 || error.status === 429 || error.status >= 500;
}

function remainingMs({ settings, ctx }: Delivery): number {
  return Math.floor(settings.timeoutMs - ctx.elapsedMs() - RESERVE_MS);
}

function describe(error: unknown): string {
  return error instanceof HttpError ? `HTTP ${error.status}` : `${(error as Error).name}: ${(error as Error).message}`;
}

/** Retry-After in seconds or as an HTTP date. */
function retryAfterMs(error: unknown, now: number): number | undefined {
  if (!(error instanceof HttpError) || error.retryAfter === undefined) return undefined;
  const seconds = Number(error.retryAfter);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(error.retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

async function postWithRetries(delivery: Delivery, url: URL, body: string | Buffer, gzip: boolean): Promise<number> {
  const { ctx } = delivery;
  const proxy = proxyFor(url, ctx.env);
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS_PER_RUN; attempt++) {
    try {
      return await post({ url, body, gzip, proxy, budgetMs: remainingMs(delivery), userAgent: `anonymous-statistics/${ctx.toolVersion}` });
    } catch (error) {
      lastError = error;
      if (!isRetryable(error)) break;
      const wait = retryAfterMs(error, ctx.now().getTime()) ?? FIRST_RETRY_MS * 2 ** attempt * (0.5 + ctx.random());
      // Only retry if the wait and another attempt still fit; otherwise the outbox keeps it.
      if (attempt + 1 >= ATTEMPTS_PER_RUN || wait + 200 > remainingMs(delivery)) break;
      ctx.debug(`${describe(error)}; retrying in ${Math.round(wait)} ms`);
      await ctx.sleep(wait);
    }
  }
  throw lastError;
}

function endpointKey({ settings }: Delivery): string {
  return settings.endpoint.href;
}

/**
 * When the next attempt at this endpoint may be made. A time further off than the ceiling from
 * now was not set by a run whose clock agreed with ours (it was far ahead, or the file was
 * planted): it is ignored, not clamped, since a clamp to now + ceiling would move with the clock
 * and never pass.
 */
function nextAttempt(delivery: Delivery, state: State): number {
  const now = delivery.ctx.now().getTime();
  const next = state.backoff[endpointKey(delivery)]?.next ?? 0;
  return next > now + BACKOFF_MAX_MS ? 0 : next;
}

function recordFailure(delivery: Delivery, error: unknown): void {
  const { ctx } = delivery;
  const now = ctx.now().getTime();
  updateState(delivery.stateDir, (state) => {
    const failures = Math.min(64, (state.backoff[endpointKey(delivery)]?.failures ?? 0) + 1);
    const exponential = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1)) * (0.5 + ctx.random());
    // A receiver's Retry-After is honoured, up to the same ceiling.
    const delay = Math.min(BACKOFF_MAX_MS, Math.max(exponential, retryAfterMs(error, now) ?? 0));
    return { ...state, backoff: { ...state.backoff, [endpointKey(delivery)]: { failures, next: Math.round(now + delay) } } };
  });
}

function recordSuccess(delivery: Delivery): void {
  if (!readState(delivery.stateDir).backoff[endpointKey(delivery)]) return;
  updateState(delivery.stateDir, ({ backoff: { [endpointKey(delivery)]: _cleared, ...others }, ...rest }) => ({ ...rest, backoff: others }));
}

/** The transparency log: every payload delivered, one JSON per line, byte for byte as on the wire. */
function appendLog({ settings }: Delivery, line: string): void {
  if (settings.logFile === undefined) return;
  try {
    appendText(settings.logFile, `${line}\n`, undefined);
  } catch {
    // The log is for the user's eyes; a full disk or a FIFO nobody reads must not cost the event.
  }
}

function note(delivery: Delivery, events: readonly OutboxEvent[], outcome: Outcome, extra: Partial<HistoryEntry> = {}): void {
  recordHistory(
    delivery.stateDir,
    events.map((event) => ({ time: event.timestamp, event: event.event, uuid: event.uuid, outcome: outcome.kind, reason: outcome.reason, status: outcome.status, ...extra })),
  );
}

/** Drops the oldest waiting events beyond the caps; the count rides on the next event created. */
export function enforceCaps(delivery: Delivery): void {
  const dropped = capOutbox(delivery.outbox);
  if (dropped === 0) return;
  delivery.ctx.debug(`outbox full: dropped the ${dropped} oldest events`);
  updateState(delivery.stateDir, (state) => ({ ...state, dropped: state.dropped + dropped }));
}

function queued(delivery: Delivery, body: string, reason: string): Outcome {
  appendLog(delivery, `{"queued":true,"reason":${JSON.stringify(reason)},"payload":${body}}`);
  enforceCaps(delivery);
  return { kind: 'queued', reason };
}

/**
 * A new event: written ahead into the outbox as claimed by us, sent to /capture/, then deleted
 * (sent, or refused for good) or released to wait for a later run. Then, if time is left, what
 * was already waiting. `state` is the state this run read when it created the event.
 */
export async function deliverNew(delivery: Delivery, event: OutboxEvent, state: State): Promise<Outcome> {
  const { settings, ctx, outbox } = delivery;
  const body = JSON.stringify(event);
  const now = ctx.now().getTime();
  let outcome: Outcome;
  if (now < nextAttempt(delivery, state)) {
    const reason = `receiver failing, next attempt after ${new Date(nextAttempt(delivery, state)).toISOString()}`;
    try {
      store(outbox, event, body);
      outcome = queued(delivery, body, reason);
    } catch (error) {
      outcome = { kind: 'dropped', reason: `${reason}; could not be stored (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    note(delivery, [event], outcome);
    return outcome;
  }
  let item: Item;
  try {
    item = storeClaimed(outbox, event, body, ctx.pid, now);
  } catch (error) {
    // Decided once: an event that cannot be stored is not sent either (see README, "When nothing can be stored").
    outcome = { kind: 'dropped', reason: `could not be stored (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    note(delivery, [event], outcome);
    return outcome;
  }
  // If the budget runs out mid-send, the process ends with the event waiting, not lost.
  ctx.atDeadline(() => release(outbox, item));
  try {
    const status = await postWithRetries(delivery, captureUrl(settings.endpoint), body, false);
    settle(item);
    appendLog(delivery, body);
    recordSuccess(delivery);
    outcome = { kind: 'sent', reason: 'delivered', status };
  } catch (error) {
    if (isRetryable(error)) {
      recordFailure(delivery, error);
      outcome = release(outbox, item) ? queued(delivery, body, describe(error)) : { kind: 'dropped', reason: `${describe(error)}; the outbox lost it (cleared meanwhile)` };
    } else {
      settle(item);
      outcome = { kind: 'dropped', reason: `the receiver refused it (${describe(error)})`, status: (error as HttpError).status };
    }
  }
  note(delivery, [event], outcome, { duration_ms: Math.round(ctx.elapsedMs()) });
  if (outcome.kind === 'sent' && waitingNames(outbox).length > 0 && remainingMs(delivery) > 100) await flushOutbox(delivery, { manual: false });
  return outcome;
}

export interface FlushResult {
  sent: number;
  dropped: number;
  remaining: number;
  corrupt: number;
  /** Why it stopped before the outbox was empty. */
  error?: string;
}

/**
 * Sends what waits in the outbox, oldest first, in gzip batches to /batch/. `manual` (the flush
 * command: a person asked) tries even while the endpoint is backing off.
 */
export async function flushOutbox(delivery: Delivery, { manual }: { manual: boolean }): Promise<FlushResult> {
  const { ctx, outbox } = delivery;
  const result: FlushResult = { sent: 0, dropped: 0, remaining: 0, corrupt: 0 };
  recoverAbandoned(outbox, ctx.now().getTime(), ctx.isProcessAlive);
  const next = nextAttempt(delivery, readState(delivery.stateDir));
  if (!manual && ctx.now().getTime() < next) {
    result.error = `receiver failing, next attempt after ${new Date(next).toISOString()}`;
  }
  while (result.error === undefined && remainingMs(delivery) > 0) {
    const { items, corrupt } = claimWaiting(outbox, ctx.pid, ctx.now().getTime(), BATCH_MAX_EVENTS);
    result.corrupt += corrupt;
    if (items.length === 0) break;
    // By file: a completed item is a copy of the one claimed.
    const unsent = new Map(items.map((item) => [item.file, item]));
    const releaseUnsent = () => unsent.forEach((item) => unsent.delete(item.file) && release(outbox, item));
    ctx.atDeadline(releaseUnsent);
    for (const batch of batches(items.map((item) => completed(delivery, item)))) {
      if (result.error !== undefined || remainingMs(delivery) <= 0) break;
      result.error = await sendBatch(delivery, batch, result, unsent);
    }
    releaseUnsent();
  }
  result.remaining = waitingNames(outbox).length;
  if (result.remaining > 0 && result.error === undefined) result.error = 'the time budget ran out';
  return result;
}

/** An item --background stored unfinished gets what is collected now; its uuid and time stay. */
function completed(delivery: Delivery, item: Item): Item {
  if (item.event.collect === undefined) return item;
  const event = delivery.complete(item.event);
  return { ...item, event, bytes: Buffer.byteLength(JSON.stringify(event)) };
}

/**
 * One batch; a batch the receiver refuses as a whole is split in two until each refused event
 * stands alone, so only the events it really refuses are dropped. Resolves with the reason to
 * stop (the receiver is failing), or undefined.
 */
async function sendBatch(delivery: Delivery, items: Item[], result: FlushResult, unsent: Map<string, Item>): Promise<string | undefined> {
  const { ctx, settings } = delivery;
  const envelope = { api_key: items[0].event.api_key, sent_at: ctx.now().toISOString(), batch: items.map(({ event: { api_key: _key, ...rest } }) => rest) };
  try {
    // Loaded on first use: only a batch needs it, and a --background caller never sends one.
    const { gzipSync } = require('node:zlib') as typeof import('node:zlib');
    const status = await postWithRetries(delivery, batchUrl(settings.endpoint), gzipSync(JSON.stringify(envelope)), true);
    for (const item of items) {
      settle(item);
      unsent.delete(item.file);
      appendLog(delivery, JSON.stringify(item.event));
    }
    result.sent += items.length;
    recordSuccess(delivery);
    note(delivery, items.map((item) => item.event), { kind: 'sent', reason: `from the outbox, in a batch of ${items.length}`, status });
    return undefined;
  } catch (error) {
    if (isRetryable(error)) {
      recordFailure(delivery, error);
      return describe(error);
    }
    if (items.length > 1) {
      const half = Math.ceil(items.length / 2);
      for (const part of [items.slice(0, half), items.slice(half)]) {
        if (remainingMs(delivery) <= 0) return 'the time budget ran out';
        const stop = await sendBatch(delivery, part, result, unsent);
        if (stop !== undefined) return stop;
      }
      return undefined;
    }
    settle(items[0]);
    unsent.delete(items[0].file);
    result.dropped++;
    note(delivery, [items[0].event], { kind: 'dropped', reason: `the receiver refused it (${describe(error)})`, status: (error as HttpError).status });
    ctx.debug(`dropped ${items[0].event.uuid}: the receiver refused it (${describe(error)})`);
    return undefined;
  }
}

/** Oldest first, one API key per request (the key goes in the envelope), bounded in count and size. */
function* batches(items: Item[]): Generator<Item[]> {
  let current: Item[] = [];
  let bytes = 0;
  for (const item of items) {
    const full = current.length >= BATCH_MAX_EVENTS || bytes + item.bytes > BATCH_MAX_BYTES || (current.length > 0 && current[0].event.api_key !== item.event.api_key);
    if (full) {
      yield current;
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.bytes;
  }
  if (current.length > 0) yield current;
}
