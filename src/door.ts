/**
 * The one door past consent, a recipe: open the store, admit the event (its crash-loop slot,
 * then one state write), tell the person or hold or record locally where that comes first,
 * open the connection, collect while its handshakes are in flight, send, finish and send what
 * waits; then the books (after-consent/books.ts) record the run's report once: the history, the
 * log, and at most one more state write.
 * before-consent/run.ts loads this file only once consent is given (or a person asked to look:
 * --dry-run, status, history), so an opted-out run never evaluates detection, crypto, HTTP or
 * outbox code; src/layout.ts and test/unit/layout.test.ts keep it the only way in.
 */
import type { EventName, EventProperties } from './before-consent/cli/events.ts';
import type { Context } from './before-consent/config/context.ts';
import type { Settings } from './before-consent/config/settings.ts';
import { optOutAdvice, type OptOut } from './before-consent/consent/optout.ts';
import { commandName } from './before-consent/config/vendor.ts';
import { noticeVersion } from './after-consent/collect/properties.ts';
import { keepBooks } from './after-consent/books.ts';
import { deliverNew, flushOutbox, openEarly, timeLeftForWaiting, type Delivery, type FlushResult } from './after-consent/deliver/delivery.ts';
import type { EarlyConnection } from './after-consent/deliver/transport.ts';
import { newReport, type Report } from './after-consent/deliver/report.ts';
import { buildPayload, finishEvent, identityOf, systemOf, type Identity } from './after-consent/event.ts';
import { candidates, peeking, printDryRun } from './after-consent/look.ts';
import { claimSlot } from './after-consent/store/limits.ts';
import { claimWaiting, clearOutbox, finishClaimed, release, store, unsentCount, type OutboxEvent } from './after-consent/store/outbox.ts';
import { countsOf, countsTaken, disposition, emptyState, forgetIdentity, linkEvent, mayUpload, nextAttempt, noticeShownFor, suppressedOne, withIdentity, withNoticeShown, type Counts, type State } from './after-consent/store/state.ts';
import type { HistoryEntry } from './after-consent/store/history.ts';
import { readState, updateState } from './after-consent/store/state-file.ts';
import { closeStore, describeRefused, openStore, type Store } from './after-consent/store/store.ts';

/** What a person asked to see (nothing written): the door lets these through as they are. */
export { dashboardConsent, describeState, history, schema } from './after-consent/look.ts';

const DEFAULT_EVENTS_PER_HOUR = 10;
const NOT_YET_TOLD = 'waits until the notice has been shown on this host (the vendor requires it)';
/** A CLI runs many commands an hour without being in a loop: its events have a limit of their own. */
const COMMAND_EVENTS_PER_HOUR = 600;

type Admission = { admitted: true; state: State; counts: Counts; properties: EventProperties } | { admitted: false; outcome: 'suppressed' | 'dropped'; reason: string };

/**
 * The crash-loop limit (at most `eventsPerHour` events of one kind per clock hour, a slot file
 * each: limits.ts), then one state update: the run or execution the event belongs to, the counts
 * it carries (the events held back or dropped since the last one created), and the ids
 * distinct_id is made from (made with the first event).
 */
function admit(store: Store, command: EventName, properties: EventProperties, ctx: Context): Admission {
  const perHour = command.startsWith('command-') ? COMMAND_EVENTS_PER_HOUR : (ctx.vendor.eventsPerHour ?? DEFAULT_EVENTS_PER_HOUR);
  const now = ctx.now().getTime();
  // Decided once: with nothing stored the limit could not hold, so nothing is sent.
  const unwritable: Admission = { admitted: false, outcome: 'dropped', reason: 'the state dir cannot be written (full or read-only)' };
  let admitted: boolean;
  try {
    admitted = claimSlot(store.limits, command, now, perHour);
  } catch {
    return unwritable;
  }
  if (!admitted) {
    updateState(store.stateDir, suppressedOne);
    return { admitted: false, outcome: 'suppressed', reason: `more than ${perHour} ${command} events this hour (crash-loop limit)` };
  }
  let linked = { state: emptyState(), properties };
  const state = updateState(store.stateDir, (before) => {
    linked = linkEvent(command, before, now, properties, ctx.uuid);
    return withIdentity(countsTaken(linked.state), ctx.uuid);
  });
  if (!state) return unwritable;
  return { admitted: true, state, counts: countsOf(linked.state), properties: linked.properties };
}

/** One run past the door: where it keeps things, what it was asked, and the report its books record. */
interface Run {
  opened: Store;
  settings: Settings;
  ctx: Context;
  report: Report;
  /** The state as this run last read or wrote it. */
  known: State;
  /** The connection opened for the new event while it was built; closed at the end of the run. */
  early?: EarlyConnection;
}

/**
 * Opens the store, runs `work` with it, and has the books record the run's report at the end,
 * or at the deadline should the budget run out first.
 */
async function withStore<T>(settings: Settings, ctx: Context, work: (run: Run) => Promise<T> | T, unusable: (refused: string) => T): Promise<T> {
  const { store: opened, refused } = openStore(candidates(settings, ctx), ctx.uid, ctx.now().getTime());
  if (!opened) return unusable(describeRefused(refused));
  const run: Run = { opened, settings, ctx, report: newReport(), known: emptyState() };
  const keep = () => keepBooks(settings, ctx, opened, run.report, run.known);
  ctx.atDeadline(keep);
  try {
    return await work(run);
  } finally {
    run.early?.close();
    keep();
    closeStore(opened.stateDir);
  }
}

function delivery({ settings, ctx, opened, report, known, early }: Run): Delivery {
  return { settings, ctx, outbox: opened.outbox, report, early, notBefore: nextAttempt(known, settings.endpoint.href, ctx.now().getTime()) };
}

/** Unfinished events finished per claim, at most: the rest wait for the runs after this one. */
const FINISHED_PER_CLAIM = 50;
/** Kept back from the budget for sending what was finished. */
const FINISH_RESERVE_MS = 300;

/**
 * Events stored unfinished (--background, or held for the notice) are finished with what is
 * collected now, before anything is sent: delivery sees only whole events, and data flows one
 * way (collect, then store, then deliver). Bounded by the budget; the system is detected once.
 */
function finishWaiting(run: Run): void {
  const { opened, settings, ctx } = run;
  // Their events were admitted, which keeps the ids; a state file lost since gets them anew, once.
  if (!run.known.idSalt || !run.known.distinctId) run.known = updateState(opened.stateDir, (state) => withIdentity(state, ctx.uuid)) ?? withIdentity(run.known, ctx.uuid);
  const ids = identityOf(run.known, ctx);
  const system = systemOf(ctx);
  while (ctx.elapsedMs() < settings.timeoutMs - FINISH_RESERVE_MS) {
    const { items } = claimWaiting(opened.outbox, ctx.pid, ctx.now().getTime(), FINISHED_PER_CLAIM, true);
    if (items.length === 0) return;
    for (const item of items) {
      const finished = item.event.collect === undefined ? item.event : finishEvent(item.event, settings, ctx, ids, system);
      if (!finishClaimed(opened.outbox, item, finished)) release(opened.outbox, item);
    }
  }
}

/** What waits goes, whole, oldest first. `manual`: a person asked (`flush`), so even a receiver backing off is tried. */
async function sendWhatWaits(run: Run, manual: boolean): Promise<FlushResult> {
  finishWaiting(run);
  return flushOutbox(delivery(run), { manual });
}

/**
 * The notice, once per state dir and notice version: what is collected and how to say no. Never
 * on stdout. The run that shows it sends nothing: its event waits for a later run, so a person
 * who says no at once (`disable` deletes what waits) has sent nothing at all.
 */
function showNotice({ opened, settings, ctx }: Run, version: string): void {
  const advice = optOutAdvice(ctx.vendor);
  const command = commandName(ctx.vendor);
  ctx.stderr(
    `${settings.product} sends anonymous usage statistics: OS, kernel, architecture, virtualization and\n` +
      `container type, product version, and start/stop/crash events. Never host names, users, paths or\n` +
      `addresses. Opt out with ${advice.variable}, or: ${advice.command} (deletes what waits).\n` +
      `Nothing has been sent yet: this run's event waits and goes with a later run.\n` +
      `Record without uploading: ${command} local. Every property and why: ${command} schema (notice ${version}).\n`,
  );
  // Not writable: the notice may show again, which errs on the side of telling.
  updateState(opened.stateDir, (state) => withNoticeShown(state, ctx.now().toISOString(), version));
}

/** A person can read a notice now: an installer asked (--show-notice), or stderr is a terminal. */
function canTell(settings: Settings, ctx: Context): boolean {
  return settings.showNotice || (!ctx.backgroundChild && ctx.stderrIsTTY());
}

/** An event admitted, and what is known of it before anything is collected. */
interface NewEvent {
  command: EventName;
  identity: Identity;
  properties: EventProperties;
  counts: Counts;
}

/** What became of an event, in the report; shown with --debug. */
function noted({ report, ctx }: Run, { command, identity }: Pick<NewEvent, 'command' | 'identity'>, outcome: HistoryEntry['outcome'], reason: string, payload?: unknown): void {
  report.history.push({ time: ctx.now().toISOString(), event: command, uuid: identity.uuid, outcome, reason, ...(payload === undefined ? {} : { payload }) });
  ctx.debug(`${command} ${identity.uuid}: ${outcome} (${reason})`);
}

/**
 * `childArgs`: the command line the --background child runs. `local`: local-only mode, where
 * the event is recorded in the history (and the log file), never uploaded.
 */
export async function report(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context, childArgs: readonly string[], local: boolean): Promise<void> {
  const identity = { uuid: ctx.uuid(), timestamp: ctx.now() };
  if (settings.dryRun) return printDryRun(command, eventProperties, settings, optOut, ctx, identity, local);
  const noStore = (refused: string) => ctx.debug(`not sending ${command}: no usable state dir (${refused})`);
  return withStore(settings, ctx, async (run) => {
    const admission = admit(run.opened, command, eventProperties, ctx);
    if (!admission.admitted) return noted(run, { command, identity }, admission.outcome, admission.reason);
    run.known = admission.state;
    const event: NewEvent = { command, identity, properties: admission.properties, counts: admission.counts };
    const version = noticeVersion();
    const told = noticeShownFor(admission.state, version);
    switch (disposition({ local, told, canTell: !local && !told && canTell(settings, ctx), noticeRequired: ctx.vendor.noticeRequired === true })) {
      case 'record':
        return recordLocally(run, event);
      case 'tell':
        showNotice(run, version);
        return void hold(run, event, 'this run showed the notice: it waits for a later run');
      case 'hold':
        return void hold(run, event, NOT_YET_TOLD);
      case 'send':
        break;
    }
    if (settings.background) return storeForBackground(run, event, childArgs);
    run.early = await openEarly(delivery(run));
    const payload = buildPayload(command, event.properties, settings, ctx, event.counts, identity, identityOf(run.known, ctx));
    const outcome = await deliverNew(delivery(run), payload);
    ctx.debug(`${command} ${payload.uuid}: ${outcome.kind} (${outcome.reason})`);
    // The receiver takes events again: what waits goes too, if time is left.
    if (outcome.kind === 'sent' && timeLeftForWaiting(delivery(run))) await sendWhatWaits(run, false);
  }, noStore);
}

/**
 * Local-only mode: what would have been sent, built whole, kept in the history and the log file;
 * no outbox (so nothing recorded now can go after a later `enable`), no socket, no sender.
 */
function recordLocally(run: Run, { command, identity, properties, counts }: NewEvent): void {
  const payload = buildPayload(command, properties, run.settings, run.ctx, counts, identity, identityOf(run.known, run.ctx));
  const reason = 'local-only mode: recorded here, never uploaded';
  noted(run, { command, identity }, 'local', reason, payload);
  run.report.wire.push(JSON.stringify({ local: true, reason, payload }));
}

/**
 * The event made durable in the outbox, unfinished (what is collected comes when it is sent, by
 * the detached child or any later run). Returns false when it could not be stored.
 */
function hold(run: Run, { command, identity, properties, counts }: NewEvent, why: string): boolean {
  const { settings } = run;
  const event: OutboxEvent = {
    api_key: settings.apiKey,
    event: command,
    uuid: identity.uuid,
    timestamp: identity.timestamp.toISOString(),
    properties: { ...properties, ...counts },
    collect: { root: settings.root, ...(settings.productVersion === undefined ? {} : { product_version: settings.productVersion }) },
  };
  try {
    store(run.opened.outbox, event);
  } catch (error) {
    noted(run, { command, identity }, 'dropped', `could not be stored (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return false;
  }
  noted(run, { command, identity }, 'queued', why);
  // What waits may never get through either: the caps hold here as for any queued event.
  run.report.leftWaiting = true;
  return true;
}

/**
 * --background: the event is made durable before the caller is let go, so a child killed by a
 * service manager's stop only delays it.
 */
function storeForBackground(run: Run, event: NewEvent, childArgs: readonly string[]): void {
  if (!hold(run, event, 'stored for the background sender')) return;
  try {
    run.ctx.spawnDetached(childArgs);
  } catch (error) {
    // EAGAIN under a process limit, say: the event waits in the outbox for the next run.
    run.ctx.debug(`${event.command} ${event.identity.uuid} waits in the outbox: ${(error as Error).message}`);
  }
}

/** Reads the state; where the vendor requires the notice first, nothing waiting goes before it was shown. */
function uploadAllowed(run: Run): boolean {
  run.known = readState(run.opened.stateDir);
  return mayUpload(run.known, noticeVersion(), run.ctx.vendor.noticeRequired === true);
}

/** The --background child: sends what waits, as any later run would. */
export async function sendWaiting(settings: Settings, ctx: Context): Promise<void> {
  await withStore(
    settings,
    ctx,
    async (run) => {
      if (uploadAllowed(run)) await sendWhatWaits(run, false);
    },
    () => undefined,
  );
}

export async function flush(settings: Settings, ctx: Context): Promise<FlushResult> {
  const nothingDone = (error: string, remaining = 0): FlushResult => ({ sent: 0, dropped: 0, remaining, corrupt: 0, error });
  return withStore(
    settings,
    ctx,
    (run) => (uploadAllowed(run) ? sendWhatWaits(run, true) : nothingDone('the notice has not been shown on this host yet (the vendor requires it first)', unsentCount(run.opened.outbox))),
    (refused) => nothingDone(`no usable state dir (${refused})`),
  );
}

/**
 * Deletes what was collected but not yet sent: consent withdrawn (`disable`, which also forgets
 * the id), or uploading given up (`local`).
 */
export function clearWaiting(settings: Settings, ctx: Context, { forgetId }: { forgetId: boolean }): number {
  return peeking(settings, ctx, ({ stateDir, outbox }) => {
    if (!stateDir) return 0;
    updateState(stateDir, (state) => {
      const cleared = { ...state, dropped: 0 };
      return forgetId ? forgetIdentity(cleared) : cleared;
    });
    return outbox ? clearOutbox(outbox) : 0;
  });
}
