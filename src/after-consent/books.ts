import type { Context } from '../before-consent/config/context.ts';
import type { Settings } from '../before-consent/config/settings.ts';
import type { ReceiverAnswer, Report } from './deliver/report.ts';
import { appendText } from './store/files.ts';
import { recordHistory } from './store/history.ts';
import { capOutbox } from './store/outbox.ts';
import { afterFailure, afterSuccess, droppedMore, type State } from './store/state.ts';
import { updateState } from './store/state-file.ts';
import type { Store } from './store/store.ts';

/**
 * The run's books: the one place a run's report (deliver/report.ts) becomes records. Once per
 * run: one append to the history, one to the transparency log, the outbox's caps, and at most
 * one state write (the receiver's back-off, the events the caps dropped).
 */

/**
 * The oldest waiting events beyond the caps, dropped now; their count rides on the next event
 * created. (A flush puts them in force with its first claim: deliver/delivery.ts claimFirst.)
 */
function applyCaps(ctx: Context, { outbox }: Store, report: Report): void {
  const dropped = capOutbox(outbox);
  if (dropped > 0) ctx.debug(`outbox full: dropped the ${dropped} oldest events`);
  report.capsDropped += dropped;
  report.leftWaiting = false;
}

/**
 * Records what `report` holds and empties it, so the deadline and the end of the run can both
 * call this. `known` is the state this run last read: a success changes the state only where it
 * ends a back-off on record.
 */
export function keepBooks(settings: Settings, ctx: Context, opened: Store, report: Report, known: State): void {
  const history = report.history.splice(0);
  const wire = report.wire.splice(0);
  const answers = report.receiver.splice(0);
  if (report.leftWaiting) applyCaps(ctx, opened, report);
  const dropped = report.capsDropped;
  report.capsDropped = 0;
  recordHistory(opened.stateDir, history);
  if (wire.length > 0 && settings.logFile !== undefined) {
    try {
      appendText(settings.logFile, wire.map((line) => `${line}\n`).join(''), { own: false, uid: ctx.uid });
    } catch {
      // The log is for the user's eyes; a full disk or a FIFO nobody reads must not cost the event.
    }
  }
  const endpoint = settings.endpoint.href;
  const backoffChanges = answers.some((answer) => !answer.took) || (answers.length > 0 && known.backoff[endpoint] !== undefined);
  if (dropped === 0 && !backoffChanges) return;
  const now = ctx.now().getTime();
  const answered = (state: State, answer: ReceiverAnswer) => (answer.took ? afterSuccess(state, endpoint) : afterFailure(state, endpoint, now, ctx.random(), answer.retryAfterMs));
  updateState(opened.stateDir, (state) => droppedMore(answers.reduce(answered, state), dropped));
}
