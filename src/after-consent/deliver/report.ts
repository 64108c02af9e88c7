import type { HistoryEntry } from '../store/history.ts';
import type { OutboxEvent } from '../store/outbox.ts';

/**
 * What one run found out, written down as data while it happens: delivery and the door note
 * here, and nothing else; the books (after-consent/books.ts) record it once, at the end of the
 * run or at its deadline. So delivery only sends, and the state file, the history and the log
 * each have one writer.
 */
export type Outcome = { kind: 'sent' | 'queued' | 'dropped'; reason: string; status?: number };

/** One answer of the receiver: a request it took ends its back-off, a failure is one more step. */
export type ReceiverAnswer = { took: true } | { took: false; retryAfterMs: number | undefined };

export interface Report {
  /** What became of each event, in order. */
  history: HistoryEntry[];
  /** The transparency log's lines: what went on the wire, or was left waiting. */
  wire: string[];
  receiver: ReceiverAnswer[];
  /** Events were left waiting in the outbox: its caps apply before the run ends. */
  leftWaiting: boolean;
  /** Events the outbox's caps dropped this run (books.ts applies them). */
  capsDropped: number;
}

export function newReport(): Report {
  return { history: [], wire: [], receiver: [], leftWaiting: false, capsDropped: 0 };
}

/** What became of these events, as of `time`. */
export function noteOutcome(report: Report, events: readonly Pick<OutboxEvent, 'event' | 'uuid' | 'timestamp'>[], outcome: Outcome, time: Date, extra: Partial<HistoryEntry> = {}): void {
  const at = time.toISOString();
  for (const event of events) {
    report.history.push({ time: at, event_time: event.timestamp, event: event.event, uuid: event.uuid, outcome: outcome.kind, reason: outcome.reason, status: outcome.status, ...extra });
  }
}
