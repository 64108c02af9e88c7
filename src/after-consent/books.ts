import type { Context } from '../before-consent/config/context.ts';
import type { Settings } from '../before-consent/config/settings.ts';
import { appendText } from './store/files.ts';
import { recordHistory, type HistoryEntry } from './store/history.ts';
import { capOutbox, type OutboxEvent } from './store/outbox.ts';
import { afterFailure, afterSuccess, droppedMore, nextAttempt } from './store/state.ts';
import { readState, updateState } from './store/state-file.ts';
import type { Store } from './store/store.ts';

/**
 * The run's books, kept by the door and handed to delivery: what became of each event (the
 * history), what went on the wire (the transparency log), how the receiver is doing (its
 * back-off), and the outbox's caps. Delivery sends and reports; every record it leads to is
 * written here, in one place.
 */
export type Outcome = { kind: 'sent' | 'queued' | 'dropped'; reason: string; status?: number };

export interface Books {
  /** What became of these events, in the history. */
  outcome: (events: readonly OutboxEvent[], outcome: Outcome, extra?: Partial<HistoryEntry>) => void;
  /** One line of the transparency log, as it went on the wire (or as it was left waiting). */
  wire: (line: string) => void;
  /** The earliest time the receiver may be tried again (epoch ms; 0 when it is not backing off). */
  nextAttempt: () => number;
  /** The receiver failed: one more step of back-off, at least its Retry-After. */
  receiverFailed: (retryAfterMs: number | undefined) => void;
  /** The receiver took a request: its back-off ends. */
  receiverTook: () => void;
  /** The oldest waiting events beyond the caps dropped; the count rides on the next event created. */
  applyCaps: () => void;
}

export function openBooks(settings: Settings, ctx: Context, { stateDir, outbox }: Store): Books {
  const endpoint = settings.endpoint.href;
  return {
    outcome: (events, outcome, extra = {}) =>
      recordHistory(
        stateDir,
        events.map((event) => ({ time: ctx.now().toISOString(), event_time: event.timestamp, event: event.event, uuid: event.uuid, outcome: outcome.kind, reason: outcome.reason, status: outcome.status, ...extra })),
      ),
    wire: (line) => {
      if (settings.logFile === undefined) return;
      try {
        appendText(settings.logFile, `${line}\n`, { own: false, uid: ctx.uid });
      } catch {
        // The log is for the user's eyes; a full disk or a FIFO nobody reads must not cost the event.
      }
    },
    nextAttempt: () => nextAttempt(readState(stateDir), endpoint, ctx.now().getTime()),
    receiverFailed: (retryAfterMs) => {
      const now = ctx.now().getTime();
      updateState(stateDir, (state) => afterFailure(state, endpoint, now, ctx.random(), retryAfterMs));
    },
    receiverTook: () => void updateState(stateDir, (state) => afterSuccess(state, endpoint)),
    applyCaps: () => {
      const dropped = capOutbox(outbox);
      if (dropped === 0) return;
      ctx.debug(`outbox full: dropped the ${dropped} oldest events`);
      updateState(stateDir, (state) => droppedMore(state, dropped));
    },
  };
}
