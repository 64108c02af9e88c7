/**
 * The one door past consent, a recipe: open the store, admit the event (its crash-loop slot,
 * then one state write), tell the person or hold or record locally where that comes first,
 * collect, finish what waits, send; the books (after-consent/books.ts) record every outcome.
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
import { openBooks } from './after-consent/books.ts';
import { deliverNew, flushOutbox, timeLeftForWaiting, type Delivery, type FlushResult } from './after-consent/deliver/delivery.ts';
import { buildPayload, finishEvent, identitySources, systemOf, type Identity } from './after-consent/event.ts';
import { candidates, peeking, printDryRun } from './after-consent/look.ts';
import { appendText } from './after-consent/store/files.ts';
import { recordHistory } from './after-consent/store/history.ts';
import { claimSlot } from './after-consent/store/limits.ts';
import { claimWaiting, clearOutbox, finishClaimed, release, store, unsentCount, type OutboxEvent } from './after-consent/store/outbox.ts';
import { countsOf, countsTaken, disposition, emptyState, forgetIdentity, linkEvent, mayUpload, noticeShownFor, suppressedOne, withNoticeShown, type Counts, type State } from './after-consent/store/state.ts';
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
 * each: limits.ts), then one state update: the run or execution the event belongs to, and the
 * counts it carries (the events held back or dropped since the last one created).
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
    return countsTaken(linked.state);
  });
  if (!state) return unwritable;
  return { admitted: true, state, counts: countsOf(linked.state), properties: linked.properties };
}

function delivery(settings: Settings, ctx: Context, opened: Store): Delivery {
  return { settings, ctx, outbox: opened.outbox, books: openBooks(settings, ctx, opened) };
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
function finishWaiting(opened: Store, settings: Settings, ctx: Context): void {
  const ids = identitySources(opened.stateDir, ctx, true);
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

/**
 * The notice, once per state dir and notice version: what is collected and how to say no. Never
 * on stdout. The run that shows it sends nothing: its event waits for a later run, so a person
 * who says no at once (`disable` deletes what waits) has sent nothing at all.
 */
function showNotice(store: Store, settings: Settings, ctx: Context, version: string): void {
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
  updateState(store.stateDir, (state) => withNoticeShown(state, ctx.now().toISOString(), version));
}

/** A person can read a notice now: an installer asked (--show-notice), or stderr is a terminal. */
function canTell(settings: Settings, ctx: Context): boolean {
  return settings.showNotice || (!ctx.backgroundChild && ctx.stderrIsTTY());
}

/**
 * `childArgs`: the command line the --background child runs. `local`: local-only mode, where
 * the event is recorded in the history (and the log file), never uploaded.
 */
export async function report(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context, childArgs: readonly string[], local: boolean): Promise<void> {
  const identity = { uuid: ctx.uuid(), timestamp: ctx.now() };
  if (settings.dryRun) return printDryRun(command, eventProperties, settings, optOut, ctx, identity, local);
  const { store: opened, refused } = openStore(candidates(settings, ctx), ctx.uid, identity.timestamp.getTime());
  if (!opened) {
    ctx.debug(`not sending ${command}: no usable state dir (${describeRefused(refused)})`);
    return;
  }
  try {
    const admission = admit(opened, command, eventProperties, ctx);
    if (!admission.admitted) {
      recordHistory(opened.stateDir, [{ time: identity.timestamp.toISOString(), event: command, uuid: identity.uuid, outcome: admission.outcome, reason: admission.reason }]);
      ctx.debug(`not sending ${command}: ${admission.reason}`);
      return;
    }
    const version = noticeVersion();
    const told = noticeShownFor(admission.state, version);
    const noticeRequired = ctx.vendor.noticeRequired === true;
    switch (disposition({ local, told, canTell: !local && !told && canTell(settings, ctx), noticeRequired })) {
      case 'record':
        return recordLocally(opened, command, admission, settings, ctx, identity);
      case 'tell':
        showNotice(opened, settings, ctx, version);
        hold(opened, command, admission, settings, ctx, identity, 'this run showed the notice: it waits for a later run');
        return;
      case 'hold':
        hold(opened, command, admission, settings, ctx, identity, NOT_YET_TOLD);
        return;
      case 'send':
        break;
    }
    if (settings.background) return storeForBackground(opened, command, admission, settings, ctx, identity, childArgs);
    const payload = buildPayload(command, admission.properties, settings, ctx, admission.counts, identity, identitySources(opened.stateDir, ctx, true));
    const delivering = delivery(settings, ctx, opened);
    const outcome = await deliverNew(delivering, payload);
    ctx.debug(`${command} ${payload.uuid}: ${outcome.kind} (${outcome.reason})`);
    // The receiver takes events again: what waits goes too, whole, if time is left.
    if (outcome.kind === 'sent' && timeLeftForWaiting(delivering)) {
      finishWaiting(opened, settings, ctx);
      await flushOutbox(delivering, { manual: false });
    }
  } finally {
    closeStore(opened.stateDir);
  }
}

type Admitted = Extract<Admission, { admitted: true }>;

/**
 * Local-only mode: what would have been sent, built whole, kept in the history and appended to
 * the log file; no outbox (so nothing recorded now can go after a later `enable`), no socket,
 * no sender.
 */
function recordLocally(opened: Store, command: EventName, admission: Admitted, settings: Settings, ctx: Context, identity: Identity): void {
  const payload = buildPayload(command, admission.properties, settings, ctx, admission.counts, identity, identitySources(opened.stateDir, ctx, true));
  const reason = 'local-only mode: recorded here, never uploaded';
  recordHistory(opened.stateDir, [{ time: payload.timestamp, event: command, uuid: payload.uuid, outcome: 'local', reason, payload }]);
  if (settings.logFile !== undefined) {
    try {
      appendText(settings.logFile, `${JSON.stringify({ local: true, reason, payload })}\n`, { own: false, uid: ctx.uid });
    } catch {
      // The log is for the user's eyes; the history has the event.
    }
  }
  ctx.debug(`${command} ${payload.uuid}: ${reason}`);
}

/**
 * The event made durable in the outbox, unfinished (what is collected comes when it is sent, by
 * the detached child or any later run). Returns false when it could not be stored.
 */
function hold(opened: Store, command: EventName, admission: Admitted, settings: Settings, ctx: Context, identity: Identity, why: string): boolean {
  const event: OutboxEvent = {
    api_key: settings.apiKey,
    event: command,
    uuid: identity.uuid,
    timestamp: identity.timestamp.toISOString(),
    properties: { ...admission.properties, ...admission.counts },
    collect: { root: settings.root, ...(settings.productVersion === undefined ? {} : { product_version: settings.productVersion }) },
  };
  try {
    store(opened.outbox, event);
  } catch (error) {
    const reason = `could not be stored (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
    recordHistory(opened.stateDir, [{ time: event.timestamp, event: command, uuid: event.uuid, outcome: 'dropped', reason }]);
    ctx.debug(`not sending ${command}: it ${reason}`);
    return false;
  }
  recordHistory(opened.stateDir, [{ time: event.timestamp, event: command, uuid: event.uuid, outcome: 'queued', reason: why }]);
  // What waits may never get through either: the caps hold here as for any queued event.
  openBooks(settings, ctx, opened).applyCaps();
  ctx.debug(`${command} ${event.uuid}: ${why}`);
  return true;
}

/**
 * --background: the event is made durable before the caller is let go, so a child killed by a
 * service manager's stop only delays it.
 */
function storeForBackground(opened: Store, command: EventName, admission: Admitted, settings: Settings, ctx: Context, identity: Identity, childArgs: readonly string[]): void {
  if (!hold(opened, command, admission, settings, ctx, identity, 'stored for the background sender')) return;
  try {
    ctx.spawnDetached(childArgs);
  } catch (error) {
    // EAGAIN under a process limit, say: the event waits in the outbox for the next run.
    ctx.debug(`${command} ${identity.uuid} waits in the outbox: ${(error as Error).message}`);
  }
}

/** Where the vendor requires the notice first, nothing waiting goes before it was shown. */
function uploadAllowed(opened: Store, ctx: Context): boolean {
  return mayUpload(readState(opened.stateDir), noticeVersion(), ctx.vendor.noticeRequired === true);
}

/** The --background child: sends what waits, as any later run would. */
export async function sendWaiting(settings: Settings, ctx: Context): Promise<void> {
  const { store: opened } = openStore(candidates(settings, ctx), ctx.uid, ctx.now().getTime());
  if (!opened) return;
  try {
    if (!uploadAllowed(opened, ctx)) return;
    finishWaiting(opened, settings, ctx);
    await flushOutbox(delivery(settings, ctx, opened), { manual: false });
  } finally {
    closeStore(opened.stateDir);
  }
}

export async function flush(settings: Settings, ctx: Context): Promise<FlushResult> {
  const { store: opened, refused } = openStore(candidates(settings, ctx), ctx.uid, ctx.now().getTime());
  if (!opened) return { sent: 0, dropped: 0, remaining: 0, corrupt: 0, error: `no usable state dir (${describeRefused(refused)})` };
  try {
    if (!uploadAllowed(opened, ctx)) return { sent: 0, dropped: 0, remaining: unsentCount(opened.outbox), corrupt: 0, error: 'the notice has not been shown on this host yet (the vendor requires it first)' };
    finishWaiting(opened, settings, ctx);
    return await flushOutbox(delivery(settings, ctx, opened), { manual: true });
  } finally {
    closeStore(opened.stateDir);
  }
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

