import path from 'node:path';
import type { Context } from '../config/context.ts';
import { HttpError } from '../errors.ts';
import type { Spool } from './spool.ts';
import { readJson, removeFile, writeQuietly } from './state-dir.ts';

/**
 * Manners across runs: after a failed delivery, `<state-dir>/delivery-backoff.json` holds the
 * time of the next attempt (30 s, doubling up to 6 hours, ±50% jitter, at least any Retry-After),
 * so a fleet whose receiver was down does not hit it all at once when it comes back.
 */
const BACKOFF_FILE = 'delivery-backoff.json';
const BACKOFF_BASE_MS = 30_000;
const BACKOFF_MAX_MS = 6 * 60 * 60 * 1000;

/** Retry-After in seconds or as an HTTP date. */
export function retryAfterMs(error: unknown, now: number): number | undefined {
  if (!(error instanceof HttpError) || error.retryAfter === undefined) return undefined;
  const seconds = Number(error.retryAfter);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(error.retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

interface Backoff {
  failures: number;
  nextAttempt: number;
}

function backoffFile(spool: Spool): string {
  return path.join(spool.stateDir, BACKOFF_FILE);
}

export function readBackoff(spool: Spool | undefined): Backoff | undefined {
  const saved = spool && readJson(backoffFile(spool));
  return saved && Number.isSafeInteger(saved.failures) && Number.isFinite(saved.nextAttempt) ? (saved as unknown as Backoff) : undefined;
}

export function recordFailure(spool: Spool | undefined, ctx: Pick<Context, 'now' | 'random'>, error: unknown): void {
  if (!spool) return;
  const now = ctx.now().getTime();
  const failures = (readBackoff(spool)?.failures ?? 0) + 1;
  const exponential = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1)) * (0.5 + ctx.random());
  // A receiver's Retry-After is honoured, up to the same ceiling.
  const delay = Math.min(BACKOFF_MAX_MS, Math.max(exponential, retryAfterMs(error, now) ?? 0));
  // Without the file the next run simply tries again.
  writeQuietly(backoffFile(spool), JSON.stringify({ failures, nextAttempt: Math.round(now + delay) }));
}

export function recordSuccess(spool: Spool | undefined): void {
  if (spool && readBackoff(spool)) removeFile(backoffFile(spool));
}

