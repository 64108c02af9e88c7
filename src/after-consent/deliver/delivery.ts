import type { Context } from '../../before-consent/config/context.ts';
import type { Settings } from '../../before-consent/config/settings.ts';
import type { HistoryEntry } from '../store/history.ts';
import { noteOutcome, type Outcome, type Report } from './report.ts';
import { claimWaiting, claimWithinCaps, recoverAbandoned, release, removeClaimed, store, storeClaimed, waitingNames, type Claim, type Item, type Outbox, type OutboxEvent } from '../store/outbox.ts';
import { BudgetSpentError, HttpError } from './errors.ts';
import { proxyFor } from './proxy.ts';
import { sinkFor, type Sink, type SinkRequest } from './sinks/index.ts';
import { connectEarly, post, type EarlyConnection } from './transport.ts';

/**
 * Getting events to the receiver without ever holding the caller: a few jittered retries inside
 * the run's budget, then the outbox; a receiver that keeps failing is tried less and less often
 * (per endpoint, persisted), so a fleet does not stampede it when it comes back. Whatever the
 * receiver answers, no event it could still take is lost. A redirect, a 5xx, and the answers of
 * a receiver that is set up wrong (401, 403, 404, 405, 410: a rotated key, a misrouted load
 * balancer) leave every event waiting and back the endpoint off. A batch refused whole (PostHog
 * refuses a whole request for one malformed event, or a 413 for its size) is split until each
 * refused event stands alone; one is dropped only when the receiver took others of the same
 * flush, so the fault is in that event. A receiver without /batch/ gets events one by one.
 * The sink (sinks/) makes the requests: PostHog's, OTLP's or GA4's; this is the same for all.
 * Delivery keeps no books: what it finds out (outcomes, the wire, the receiver's answers) it
 * notes in the run's report, which the door has recorded.
 */

export type { Outcome } from './report.ts';

/** What delivery works with: the run's settings and Context, the outbox it sends from, the report it notes in. */
export interface Delivery {
  settings: Settings;
  ctx: Context;
  outbox: Outbox;
  /** The earliest time the receiver may be tried (epoch ms; 0 when it is not backing off), as the state file says. */
  notBefore: number;
  report: Report;
  /** A connection opened while the event was built (openEarly); its first request to the same place uses it. */
  early?: EarlyConnection;
}

const ATTEMPTS_PER_RUN = 3;
const FIRST_RETRY_MS = 100;
/** Kept back from the budget for moving the event back to the outbox after the last attempt. */
const RESERVE_MS = 40;

/** Answers that say the receiver is set up wrong, not that anything is wrong with the events. */
const MISCONFIGURED = new Set([401, 403, 404, 405, 410]);

/**
 * What an error says about the events: `retry` (no answer, a redirect, 408, 429, 5xx: may work
 * in a moment), `endpoint` (the receiver is set up wrong: keep them and back off), `refused`
 * (this request's content was refused: split it), `budget` (no attempt was made).
 */
type Verdict = 'retry' | 'endpoint' | 'refused' | 'budget';

function verdictOf(error: unknown): Verdict {
  if (error instanceof BudgetSpentError) return 'budget';
  if (!(error instanceof HttpError)) return 'retry';
  if (error.status < 400 || error.status === 408 || error.status === 429 || error.status >= 500) return 'retry';
  return MISCONFIGURED.has(error.status) ? 'endpoint' : 'refused';
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

async function postWithRetries(delivery: Delivery, { url, body, gzip, headers }: SinkRequest): Promise<number> {
  const { ctx } = delivery;
  const proxy = proxyFor(url, ctx.env);
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS_PER_RUN; attempt++) {
    try {
      return await post({ url, body, gzip, proxy, headers, early: delivery.early, budgetMs: remainingMs(delivery), userAgent: `anonymous-statistics/${ctx.toolVersion}` });
    } catch (error) {
      lastError = error;
      if (verdictOf(error) !== 'retry') break;
      const wait = retryAfterMs(error, ctx.now().getTime()) ?? FIRST_RETRY_MS * 2 ** attempt * (0.5 + ctx.random());
      // Only retry if the wait and another attempt still fit; otherwise the outbox keeps it.
      if (attempt + 1 >= ATTEMPTS_PER_RUN || wait + 200 > remainingMs(delivery)) break;
      ctx.debug(`${describe(error)}; retrying in ${Math.round(wait)} ms`);
      await ctx.sleep(wait);
    }
  }
  throw lastError;
}

/** The receiver failed (a budget spent before any attempt says nothing about it, and is not counted). */
function noteFailure({ report, ctx }: Delivery, error: unknown): void {
  if (verdictOf(error) !== 'budget') report.receiver.push({ took: false, retryAfterMs: retryAfterMs(error, ctx.now().getTime()) });
}

function noted({ report, ctx }: Delivery, events: readonly OutboxEvent[], outcome: Outcome, extra?: Partial<HistoryEntry>): void {
  noteOutcome(report, events, outcome, ctx.now(), extra);
}

function sinkOf({ settings, ctx }: Delivery): Sink {
  return sinkFor(settings, ctx);
}

/** An event left waiting in the outbox: logged as queued (`wire`, the body its sink would send alone); the caps apply. */
function queued({ report }: Delivery, wire: string | Buffer, reason: string): Outcome {
  report.wire.push(`{"queued":true,"reason":${JSON.stringify(reason)},"payload":${wire.toString()}}`);
  report.leftWaiting = true;
  return { kind: 'queued', reason };
}

/** Whether a run that just delivered has time left to send what waits too. */
export function timeLeftForWaiting(delivery: Delivery): boolean {
  return waitingNames(delivery.outbox).length > 0 && remainingMs(delivery) > 100;
}

/**
 * The connection for a new event, opened before the event is built so the handshakes overlap
 * the work; none while the receiver is backing off (nothing would be sent).
 */
export async function openEarly(delivery: Delivery): Promise<EarlyConnection | undefined> {
  const { settings, ctx } = delivery;
  if (ctx.now().getTime() < delivery.notBefore) return undefined;
  const connection = connectEarly(settings.endpoint, proxyFor(settings.endpoint, ctx.env), remainingMs(delivery));
  // Before the event is built, synchronously: a turn of the event loop sends the SYN (and TLS
  // gets its context), and one more lets a connection that is already up (a near receiver)
  // start its TLS handshake.
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
  return connection;
}

/**
 * A new event: written ahead into the outbox as claimed by us, sent to /capture/, then deleted
 * (sent) or released to wait for a later run.
 */
export async function deliverNew(delivery: Delivery, event: OutboxEvent): Promise<Outcome> {
  const { ctx, outbox } = delivery;
  const sink = sinkOf(delivery);
  let outcome: Outcome;
  const refusal = sink.problem(event, ctx.now());
  if (refusal !== undefined) {
    outcome = { kind: 'dropped', reason: `not queued: ${sink.name} would not take it (${refusal})` };
    noted(delivery, [event], outcome);
    return outcome;
  }
  // The outbox keeps the capture event whatever the sink; the request is made when sending.
  const body = JSON.stringify(event);
  const request = sink.request([{ event, text: body }], { single: true, now: ctx.now() });
  const now = ctx.now().getTime();
  const next = delivery.notBefore;
  if (now < next) {
    const reason = `receiver failing, next attempt after ${new Date(next).toISOString()}`;
    try {
      store(outbox, event, body);
      outcome = queued(delivery, request.body, reason);
    } catch (error) {
      outcome = { kind: 'dropped', reason: `${reason}; could not be stored (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    noted(delivery, [event], outcome);
    return outcome;
  }
  let item: Item;
  try {
    item = storeClaimed(outbox, event, body, ctx.pid, now);
  } catch (error) {
    // Decided once: an event that cannot be stored is not sent either (see README, "When nothing can be stored").
    outcome = { kind: 'dropped', reason: `could not be stored (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    noted(delivery, [event], outcome);
    return outcome;
  }
  // If the budget runs out mid-send, the process ends with the event waiting, not lost.
  ctx.atDeadline(() => release(outbox, item));
  try {
    const status = await postWithRetries(delivery, request);
    removeClaimed(outbox, [item]);
    delivery.report.wire.push(...request.logged);
    delivery.report.receiver.push({ took: true });
    outcome = { kind: 'sent', reason: 'delivered', status };
  } catch (error) {
    // Whatever the answer, a lone event stays: were it refused for its content, a later batch
    // shows that by the receiver taking the others (flushOutbox drops it then).
    if (verdictOf(error) !== 'refused') noteFailure(delivery, error);
    const reason = whyKept(error);
    outcome = release(outbox, item) ? queued(delivery, request.body, reason) : { kind: 'dropped', reason: `${reason}; the outbox lost it (cleared meanwhile)` };
    if (error instanceof HttpError) outcome.status = error.status;
  }
  noted(delivery, [event], outcome, { duration_ms: Math.round(ctx.elapsedMs()) });
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

/** Why an event the receiver did not take is kept, as history and status say it. */
function whyKept(error: unknown): string {
  switch (verdictOf(error)) {
    case 'endpoint':
      return `${describe(error)}: the receiver is not set up for this endpoint or key; kept, and tried again later`;
    case 'refused':
      return `${describe(error)}: refused alone; kept until the receiver takes other events`;
    case 'budget':
      return 'the time budget ran out before it could be sent';
    default:
      return describe(error);
  }
}

/**
 * Sends what waits in the outbox, oldest first, in gzip batches to /batch/ (one by one to the
 * capture path where the receiver has no /batch/). `manual` (the flush command: a person asked)
 * tries even while the endpoint is backing off.
 */
export async function flushOutbox(delivery: Delivery, { manual }: { manual: boolean }): Promise<FlushResult> {
  const { ctx, outbox } = delivery;
  const result: FlushResult = { sent: 0, dropped: 0, remaining: 0, corrupt: 0 };
  recoverAbandoned(outbox, ctx.now().getTime(), ctx.isProcessAlive);
  const next = delivery.notBefore;
  if (!manual && ctx.now().getTime() < next) {
    result.error = `receiver failing, next attempt after ${new Date(next).toISOString()}`;
  }
  const flush: Flush = { result, refusedAlone: [], singly: false, sink: sinkOf(delivery) };
  for (let first = true; result.error === undefined && remainingMs(delivery) > 0; first = false) {
    const { items, corrupt, unclaimable } = first ? claimFirst(delivery, flush.sink) : claimWaiting(outbox, ctx.pid, ctx.now().getTime(), flush.sink.maxEvents);
    result.corrupt += corrupt;
    if (items.length === 0) {
      if (unclaimable !== undefined) result.error = `the outbox cannot be written (${unclaimable})`;
      break;
    }
    // By file: the items as claimed.
    const unsent = new Map(items.map((item) => [item.claim, item]));
    const releaseUnsent = () => unsent.forEach((item) => unsent.delete(item.claim) && release(outbox, item));
    ctx.atDeadline(releaseUnsent);
    for (const batch of batches(sendable(delivery, items, flush, unsent), flush.sink)) {
      if (result.error !== undefined || remainingMs(delivery) <= 0) break;
      result.error = await sendBatch(delivery, batch, flush, unsent);
    }
    settleRefused(delivery, flush, unsent);
    releaseUnsent();
    // Events refused alone and kept wait for a later flush: this one would only send them again.
    if (flush.refusedAlone.length > 0) break;
    // A claim short of a batch took all that waited; what came since has a run of its own.
    if (items.length + corrupt < flush.sink.maxEvents && unclaimable === undefined) break;
  }
  result.remaining = waitingNames(outbox).length;
  if (result.remaining > 0 && result.error === undefined) result.error = remainingMs(delivery) > 0 ? 'the receiver refused every event it was sent' : 'the time budget ran out';
  return result;
}

/**
 * The first claim of a flush puts the outbox's caps in force before anything is sent: an outbox
 * over them (written by a build with larger ones) sends only what they keep. What they drop is
 * noted for the books, which count it into the next event.
 */
function claimFirst({ ctx, outbox, report }: Delivery, sink: Sink): Claim {
  const { dropped, ...claim } = claimWithinCaps(outbox, ctx.pid, ctx.now().getTime(), sink.maxEvents);
  if (dropped > 0) ctx.debug(`outbox over its caps: dropped the ${dropped} oldest events`);
  report.capsDropped += dropped;
  return claim;
}

interface Flush {
  result: FlushResult;
  /** Events the receiver refused one by one, not yet judged. */
  refusedAlone: { item: Item; error: unknown }[];
  /** The receiver has no /batch/: events go one by one to the capture path. */
  singly: boolean;
  sink: Sink;
}

/**
 * Events the sink would refuse, or drop without a word (GA4: one older than it takes), are
 * dropped here with the reason: sending them could never succeed.
 */
function sendable(delivery: Delivery, items: Item[], flush: Flush, unsent: Map<string, Item>): Item[] {
  return items.filter((item) => {
    const refusal = flush.sink.problem(item.event, delivery.ctx.now());
    if (refusal === undefined) return true;
    removeClaimed(delivery.outbox, [item]);
    unsent.delete(item.claim);
    flush.result.dropped++;
    noted(delivery, [item.event], { kind: 'dropped', reason: `${flush.sink.name} would not take it (${refusal})` });
    return false;
  });
}

/**
 * Events refused alone are dropped when the receiver took others in this flush (the fault is in
 * them); when it took none, it refuses everything, which is its set-up, not the events: all stay.
 */
function settleRefused(delivery: Delivery, flush: Flush, unsent: Map<string, Item>): void {
  if (flush.refusedAlone.length === 0) return;
  if (flush.result.sent === 0) {
    noteFailure(delivery, flush.refusedAlone[0].error);
    noted(delivery, flush.refusedAlone.map(({ item }) => item.event), { kind: 'queued', reason: `${describe(flush.refusedAlone[0].error)} for every event: kept, and tried again later` });
    flush.result.error = `the receiver refused every event (${describe(flush.refusedAlone[0].error)})`;
    flush.refusedAlone = [];
    return;
  }
  for (const { item, error } of flush.refusedAlone) {
    removeClaimed(delivery.outbox, [item]);
    unsent.delete(item.claim);
    flush.result.dropped++;
    noted(delivery, [item.event], { kind: 'dropped', reason: `the receiver refused it alone, and took others (${describe(error)})`, status: (error as HttpError).status });
    delivery.ctx.debug(`dropped ${item.event.uuid}: the receiver refused it (${describe(error)})`);
  }
  flush.refusedAlone = [];
}


function delivered(delivery: Delivery, items: Item[], request: SinkRequest, flush: Flush, unsent: Map<string, Item>, status: number, reason: string): void {
  removeClaimed(delivery.outbox, items);
  for (const item of items) unsent.delete(item.claim);
  delivery.report.wire.push(...request.logged);
  flush.result.sent += items.length;
  delivery.report.receiver.push({ took: true });
  noted(delivery, items.map((item) => item.event), { kind: 'sent', reason, status });
}

/** One event to the capture path, as a receiver without /batch/ takes them. */
async function sendAlone(delivery: Delivery, item: Item, flush: Flush, unsent: Map<string, Item>): Promise<string | undefined> {
  try {
    const request = flush.sink.request([item], { single: true, now: delivery.ctx.now() });
    const status = await postWithRetries(delivery, request);
    delivered(delivery, [item], request, flush, unsent, status, 'from the outbox, one by one (the receiver has no /batch/)');
    return undefined;
  } catch (error) {
    return failed(delivery, [item], flush, error);
  }
}

/** A request failed: the reason to stop, or undefined where its events wait for judgement. */
function failed(delivery: Delivery, items: Item[], flush: Flush, error: unknown): string | undefined {
  const verdict = verdictOf(error);
  if (verdict === 'refused' && items.length === 1) {
    flush.refusedAlone.push({ item: items[0], error });
    return undefined;
  }
  noteFailure(delivery, error);
  noted(delivery, items.map((item) => item.event), { kind: 'queued', reason: whyKept(error), ...(error instanceof HttpError ? { status: error.status } : {}) });
  return describe(error);
}

/**
 * One batch; a batch the receiver refuses as a whole is split in two until each refused event
 * stands alone. Resolves with the reason to stop (the receiver is failing), or undefined.
 */
async function sendBatch(delivery: Delivery, items: Item[], flush: Flush, unsent: Map<string, Item>): Promise<string | undefined> {
  if (flush.singly) {
    for (const item of items) {
      if (remainingMs(delivery) <= 0) return 'the time budget ran out';
      const stop = await sendAlone(delivery, item, flush, unsent);
      if (stop !== undefined) return stop;
    }
    return undefined;
  }
  const { ctx } = delivery;
  const request = flush.sink.request(items, { single: false, now: ctx.now() });
  try {
    const status = await postWithRetries(delivery, request);
    delivered(delivery, items, request, flush, unsent, status, `from the outbox, in a batch of ${items.length}`);
    return undefined;
  } catch (error) {
    if (flush.sink.singleFallback && error instanceof HttpError && (error.status === 404 || error.status === 405)) {
      ctx.debug(`${request.url.href} answered ${describe(error)}: sending events one by one to ${flush.sink.shownUrl.href}`);
      flush.singly = true;
      return sendBatch(delivery, items, flush, unsent);
    }
    if (verdictOf(error) !== 'refused' || items.length === 1) return failed(delivery, items, flush, error);
    const half = Math.ceil(items.length / 2);
    for (const part of [items.slice(0, half), items.slice(half)]) {
      if (remainingMs(delivery) <= 0) return 'the time budget ran out';
      const stop = await sendBatch(delivery, part, flush, unsent);
      if (stop !== undefined) return stop;
    }
    return undefined;
  }
}
/** Oldest first, one batch key per request (the sink's: PostHog's API key, GA4's client_id), bounded in count and size. */
function* batches(items: Item[], sink: Sink): Generator<Item[]> {
  let current: Item[] = [];
  let bytes = 0;
  for (const item of items) {
    const full = current.length > 0 && (current.length >= sink.maxEvents || bytes + item.bytes > sink.maxBytes || sink.batchKey(current[0].event) !== sink.batchKey(item.event));
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
