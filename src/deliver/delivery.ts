import { appendFileSync } from 'node:fs';
import { debug, PROGRAM, type Context } from '../config/context.ts';
import { HttpError } from '../errors.ts';
import { record } from '../store/ledger.ts';
import type { CaptureEvent } from '../collect/payload.ts';
import { proxyFor } from './proxy.ts';
import { batchUrl, captureUrl, type Settings } from '../config/settings.ts';
import { tryLock } from '../store/queue-lock.ts';
import { capQueue, enqueue, promotePending, queuedFiles, readQueue, recoverAbandoned, writePending, type QueuedEvent, type Spool } from '../store/spool.ts';
import { removeFile } from '../store/state-dir.ts';
import { readBackoff, recordFailure, recordSuccess, retryAfterMs } from '../store/backoff.ts';
import { post } from './transport.ts';

/**
 * Getting events to the receiver without ever holding the caller: a few jittered retries inside
 * the run's budget, then the offline queue; a host whose receiver keeps failing waits longer and
 * longer between attempts (persisted), so a fleet does not stampede a receiver that comes back.
 */

export type Outcome = { kind: 'sent' | 'queued' | 'dropped'; reason: string; status?: number };

export interface Delivery {
  settings: Settings;
  ctx: Context;
  spool: Spool | undefined;
}

const ATTEMPTS_PER_RUN = 3;
const FIRST_RETRY_MS = 100;
/** Kept back from the budget for writing the queue file after the last attempt. */
const RESERVE_MS = 40;
/** Batches stay well under PostHog's request size limit (20 MB). */
const BATCH_MAX_EVENTS = 500;
const BATCH_MAX_BYTES = 2 * 1024 * 1024;

/** 408, 429 and 5xx may succeed later; any other 4xx never will (PostHog refuses the event). */
function isRetryable(error: unknown): boolean {
  return !(error instanceof HttpError) || error.status === 408 || error.status === 429 || error.status >= 500;
}

function remainingMs({ settings, ctx }: Delivery): number {
  return Math.floor(settings.timeoutMs - ctx.elapsedMs() - RESERVE_MS);
}

function describe(error: unknown): string {
  return error instanceof HttpError ? `HTTP ${error.status}` : `${(error as Error).name}: ${(error as Error).message}`;
}

async function postWithRetries(delivery: Delivery, url: URL, body: string | Buffer, gzip: boolean): Promise<number> {
  const { ctx } = delivery;
  const proxy = proxyFor(url, ctx.env);
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS_PER_RUN; attempt++) {
    try {
      return await post({ url, body, gzip, proxy, budgetMs: remainingMs(delivery), userAgent: `${PROGRAM}/${ctx.toolVersion}` });
    } catch (error) {
      lastError = error;
      if (!isRetryable(error)) break;
      const asked = retryAfterMs(error, ctx.now().getTime());
      const wait = asked ?? FIRST_RETRY_MS * 2 ** attempt * (0.5 + ctx.random());
      // Only retry if the wait and another attempt still fit; otherwise the queue takes it.
      if (attempt + 1 >= ATTEMPTS_PER_RUN || wait + 200 > remainingMs(delivery)) break;
      debug(ctx, `${describe(error)}; retrying in ${Math.round(wait)} ms`);
      await ctx.sleep(wait);
    }
  }
  throw lastError;
}

/**
 * The transparency log: every payload delivered, one JSON per line, byte for byte as it went on
 * the wire (a queued event is logged wrapped: {"queued":true,"reason":...,"payload":...}).
 */
function appendLog({ settings }: Delivery, body: string): void {
  if (settings.logFile === undefined) return;
  try {
    appendFileSync(settings.logFile, `${body}\n`, { mode: 0o600 });
  } catch {
    // The log is for the user's eyes; a full or read-only disk must not cost the event.
  }
}

function queue(delivery: Delivery, event: CaptureEvent, body: string, reason: string): Outcome {
  const { spool } = delivery;
  if (!spool) return { kind: 'dropped', reason: `${reason}; the state dir is not usable for a queue` };
  try {
    enqueue(spool, event, body);
  } catch (error) {
    return { kind: 'dropped', reason: `${reason}; could not queue it (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  return capped(delivery, { kind: 'queued', reason }, body);
}

function capped(delivery: Delivery, outcome: Outcome, body: string): Outcome {
  const { spool, ctx } = delivery;
  appendLog(delivery, `{"queued":true,"reason":${JSON.stringify(outcome.reason)},"payload":${body}}`);
  const dropped = spool ? capQueue(spool) : 0;
  if (dropped > 0) debug(ctx, `queue full: dropped the ${dropped} oldest events`);
  return outcome;
}

/** A new event: straight to /capture/, else the queue; then the queue, if this run may flush it. */
export async function deliverNew(delivery: Delivery, event: CaptureEvent): Promise<Outcome> {
  const { settings, ctx, spool } = delivery;
  const body = JSON.stringify(event);
  const backoff = readBackoff(spool);
  if (backoff && ctx.now().getTime() < backoff.nextAttempt) {
    return queue(delivery, event, body, `receiver failing, next attempt after ${new Date(backoff.nextAttempt).toISOString()}`);
  }
  const pending = spool && writePending(spool, event, body);
  // If the budget runs out mid-send, the process ends with the event queued, not lost.
  if (pending) ctx.atDeadline(() => promotePending(pending));
  let outcome: Outcome;
  try {
    const status = await postWithRetries(delivery, captureUrl(settings.endpoint), body, false);
    if (pending) removeFile(pending);
    recordSuccess(delivery.spool);
    appendLog(delivery, body);
    outcome = { kind: 'sent', reason: 'delivered', status };
  } catch (error) {
    if (!isRetryable(error)) {
      if (pending) removeFile(pending);
      return { kind: 'dropped', reason: `the receiver refused it (${describe(error)})`, status: (error as HttpError).status };
    }
    recordFailure(delivery.spool, delivery.ctx, error);
    if (pending && promotePending(pending)) return capped(delivery, { kind: 'queued', reason: describe(error) }, body);
    return queue(delivery, event, body, describe(error));
  }
  // The lock and a read of the queue only when there is something queued (a readdir is cheap).
  if (spool && queuedFiles(spool).length > 0 && remainingMs(delivery) > 100) await flushQueue(delivery);
  return outcome;
}

export interface FlushResult {
  sent: number;
  dropped: number;
  remaining: number;
  corrupt: number;
  locked: boolean;
  error?: string;
}

/**
 * Sends the queue oldest first in gzip batches to /batch/, deleting each batch once the receiver
 * took it. Holds the queue lock, so concurrent runs never send the same file twice.
 */
export async function flushQueue(delivery: Delivery): Promise<FlushResult> {
  const { spool, ctx, settings } = delivery;
  const result: FlushResult = { sent: 0, dropped: 0, remaining: 0, corrupt: 0, locked: false };
  if (!spool) return { ...result, error: 'the state dir is not usable' };
  const unlock = tryLock(spool, ctx.pid, ctx.now().getTime(), ctx.isProcessAlive);
  if (!unlock) return { ...result, locked: true };
  try {
    recoverAbandoned(spool, ctx.now().getTime());
    const events = readQueue(spool, (name) => {
      result.corrupt++;
      debug(ctx, `set aside a corrupt queue file: ${name}.corrupt`);
    });
    const { gzipSync } = require('node:zlib') as typeof import('node:zlib');
    for (const batch of batches(events)) {
      if (remainingMs(delivery) <= 0) break;
      const envelope = { api_key: batch[0].event.api_key, sent_at: ctx.now().toISOString(), batch: batch.map(({ event: { api_key: _key, ...rest } }) => rest) };
      try {
        const status = await postWithRetries(delivery, batchUrl(settings.endpoint), gzipSync(JSON.stringify(envelope)), true);
        for (const item of batch) {
          removeFile(item.file);
          appendLog(delivery, JSON.stringify(item.event));
        }
        result.sent += batch.length;
        recordSuccess(delivery.spool);
        recordBatch(delivery, batch, 'sent', `from the queue, in a batch of ${batch.length}`, status);
      } catch (error) {
        if (isRetryable(error)) {
          recordFailure(delivery.spool, delivery.ctx, error);
          result.error = describe(error);
          break;
        }
        // The receiver will never take these: drop them rather than loop on them forever.
        for (const item of batch) removeFile(item.file);
        result.dropped += batch.length;
        recordBatch(delivery, batch, 'dropped', `the receiver refused the batch (${describe(error)})`, (error as HttpError).status);
        debug(ctx, `dropped ${batch.length} queued events the receiver refused (${describe(error)})`);
      }
    }
    result.remaining = events.length - result.sent - result.dropped;
    return result;
  } finally {
    unlock();
  }
}

function recordBatch({ spool }: Delivery, batch: QueuedEvent[], outcome: 'sent' | 'dropped', reason: string, status: number | undefined): void {
  if (!spool) return;
  record(
    spool.stateDir,
    batch.map(({ event }) => ({ time: String(event.timestamp), event: String(event.event), uuid: String(event.uuid), outcome, reason, status })),
  );
}

/** Oldest first, one API key per request (the key goes in the envelope), bounded in count and size. */
function* batches(events: QueuedEvent[]): Generator<QueuedEvent[]> {
  let current: QueuedEvent[] = [];
  let bytes = 0;
  for (const item of events) {
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
