/**
 * The one door past consent: everything after the opt-out check, as a recipe. Open the store,
 * admit the event (the crash-loop slot, then one state write), collect, send, record. run.ts loads
 * this file only once consent is given (or a person asked to look: --dry-run, status, history),
 * so an opted-out run never evaluates detection, crypto, HTTP or outbox code; code before the door
 * reaches past it only through this file (test/boundary.test.ts keeps it that way).
 */
import path from 'node:path';
import type { EventName, EventProperties } from './before-consent/cli/events.ts';
import type { Context } from './before-consent/config/context.ts';
import type { Settings } from './before-consent/config/settings.ts';
import { optOutAdvice, type OptOut } from './before-consent/consent/optout.ts';
import { commandName } from './before-consent/config/vendor.ts';
import type { DashboardConsent } from './dashboard/consent.ts';
import { readText } from './after-consent/collect/detect/fs.ts';
import { detectSystem } from './after-consent/collect/detect/index.ts';
import { distinctId, identitySource, type IdentitySources } from './after-consent/collect/identity.ts';
import { SCHEMA_VERSION, toCapture, type CaptureEvent } from './after-consent/collect/payload.ts';
import { captureSchema, noticeVersion } from './after-consent/collect/properties.ts';
import { createScrubber, cut, scrubSystemValue } from './shared/scrub.ts';
import { productVersionProperties } from './after-consent/collect/version.ts';
import { deliverNew, enforceCaps, flushOutbox, type Delivery, type FlushResult } from './after-consent/deliver/delivery.ts';
import { captureUrl } from './shared/urls.ts';
import { sinkFor } from './after-consent/deliver/sinks/index.ts';
import { appendText } from './after-consent/store/files.ts';
import { formatHistory, readHistory, recordHistory } from './after-consent/store/history.ts';
import { claimSlot } from './after-consent/store/limits.ts';
import { clearOutbox, store, unsentCount, type OutboxEvent } from './after-consent/store/outbox.ts';
import {
  countsOf,
  countsTaken,
  disposition,
  emptyState,
  forgetIdentity,
  linkEvent,
  mayUpload,
  noticeShownFor,
  suppressedOne,
  withDistinctId,
  withIdSalt,
  withNoticeShown,
  type Counts,
  type State,
} from './after-consent/store/state.ts';
import { readState, STATE_FILE, updateState } from './after-consent/store/state-file.ts';
import { stateDirCandidates, type Candidate, type StateDir } from './after-consent/store/state-dir.ts';
import { closeStore, openStore, peekStore, type Store } from './after-consent/store/store.ts';

const DEFAULT_EVENTS_PER_HOUR = 10;
const NOT_YET_TOLD = 'waits until the notice has been shown on this host (the vendor requires it)';
/** A CLI runs many commands an hour without being in a loop: its events have a limit of their own. */
const COMMAND_EVENTS_PER_HOUR = 600;
/** Values this tool made (ids, how a run ended): no one's text, and the scrubber would take the ids for someone's. */
const OWN_VALUES = new Set(['execution_id', 'run_id', 'previous_run_end']);
/** A passwd file with more users than this is not a list of people to look for in free text. */
const MAX_SCRUBBED_USERS = 256;

function candidates(settings: Settings, ctx: Context): Candidate[] {
  return stateDirCandidates({ configured: settings.stateDir, product: settings.product, env: ctx.env, tmpdir: ctx.tmpdir(), uid: ctx.uid });
}

/**
 * Free text with this host's names, users, paths and addresses replaced by placeholders, then
 * cut to length (after, so a cut cannot leave part of a secret the patterns no longer match).
 */
function scrubbed(properties: EventProperties, settings: Settings, ctx: Context): EventProperties {
  // start and stop carry no text: then there is nothing to scrub, and no name to look up
  // (os.userInfo() reads the passwd database on every call).
  if (!Object.entries(properties).some(([key, value]) => !OWN_VALUES.has(key) && (typeof value === 'string' || Array.isArray(value)))) return properties;
  const hostNames = [ctx.hostName(), readText(settings.root, 'etc/hostname')?.trim() ?? ''].flatMap((name) => [name, name.split('.')[0]]);
  const passwdUsers = (readText(settings.root, 'etc/passwd') ?? '')
    .split('\n')
    .map((line) => line.split(':'))
    .filter((fields) => Number(fields[2]) >= 1000 && Number(fields[2]) < 60000)
    .map((fields) => fields[0])
    .slice(0, MAX_SCRUBBED_USERS);
  const userNames = [ctx.userName() ?? '', ctx.env.USER ?? '', ctx.env.LOGNAME ?? '', ctx.env.SUDO_USER ?? '', ...passwdUsers].filter((name) => name !== 'root');
  const scrubber = createScrubber(hostNames, userNames);
  const scrub = (text: string) => cut(scrubber(text));
  return Object.fromEntries(
    Object.entries(properties).map(([key, value]) => [key, OWN_VALUES.has(key) ? value : typeof value === 'string' ? scrub(value) : Array.isArray(value) ? value.map(scrub) : value]),
  );
}

/** A version as products and kernels write them (`1.2.3.4`, `6.1.0-18-amd64`): a version, not an address. */
const PLAIN_VERSION = /^v?\d+(\.\d+){0,4}([-+~][0-9A-Za-z.+~-]*)?$/;

/**
 * Values this tool reads or is handed rather than free text (os-release fields, the kernel, the
 * product version) are not ours: scrubbed and cut like free text, a plain version excepted.
 */
function capped<T extends Record<string, unknown>>(properties: T): T {
  return Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, typeof value === 'string' ? (PLAIN_VERSION.test(value) ? cut(value) : scrubSystemValue(value)) : value])) as T;
}

interface Identity {
  uuid: string;
  timestamp: Date;
}

/**
 * What distinct_id is made from, as kept in the state file (made and kept on first need), or,
 * where `persist` is false, made anew and shown but not kept: a dry run or `consent` before any
 * event shows an id no event will carry.
 */
function identitySources(stateDir: StateDir | undefined, ctx: Context, persist: boolean): IdentitySources {
  const kept = (read: (state: State) => string | undefined, made: () => string, keep: (state: State, value: string) => State) => () => {
    const stored = stateDir && read(readState(stateDir));
    if (stored) return stored;
    const value = made();
    if (!persist || !stateDir) return value;
    // Two first runs at once may each make one; the one written first stays.
    const after = updateState(stateDir, (state) => keep(state, value));
    return (after && read(after)) ?? value;
  };
  return {
    // 244 random bits: two UUIDs' worth from the run's random source.
    salt: kept((state) => state.idSalt, () => `${ctx.uuid()}${ctx.uuid()}`.replaceAll('-', ''), withIdSalt),
    randomId: kept((state) => state.distinctId, ctx.uuid, withDistinctId),
  };
}

function buildPayload(command: string, eventProperties: EventProperties, settings: Settings, ctx: Context, counts: Counts, identity: Identity, ids: IdentitySources): CaptureEvent {
  const ci = ctx.ci();
  return toCapture({
    apiKey: settings.apiKey,
    event: command,
    distinctId: distinctId(settings.root, settings.product, ids),
    product: settings.product,
    version: capped(productVersionProperties(settings.productVersion)),
    system: capped(detectSystem({ root: settings.root, env: ctx.env, platform: ctx.platform() })),
    automation: { ci: ci.isCI, ci_name: ci.name ?? 'none', ...counts },
    eventProperties: scrubbed(eventProperties, settings, ctx),
    uuid: identity.uuid,
    timestamp: identity.timestamp,
  });
}

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

function delivery(settings: Settings, ctx: Context, { stateDir, outbox }: Store): Delivery {
  const ids = identitySources(stateDir, ctx, true);
  return {
    settings,
    ctx,
    stateDir,
    outbox,
    // The event keeps what it was created with: its key, uuid, time, product version and root.
    complete: ({ api_key, collect, event, properties, uuid, timestamp }) => {
      const counts = { queue_dropped: Number(properties.queue_dropped) || 0, suppressed_events: Number(properties.suppressed_events) || 0 };
      const own = Object.fromEntries(Object.entries(properties).filter(([key]) => key !== 'queue_dropped' && key !== 'suppressed_events')) as EventProperties;
      const eventSettings = { ...settings, apiKey: api_key, productVersion: collect?.product_version, root: collect?.root ?? settings.root };
      return buildPayload(event, own, eventSettings, ctx, counts, { uuid, timestamp: new Date(timestamp) }, ids);
    },
  };
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
    ctx.debug(`not sending ${command}: no usable state dir (${refused.map((r) => `${r.dir} ${r.reason}`).join('; ')})`);
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
    const outcome = await deliverNew(delivery(settings, ctx, opened), payload, admission.state);
    ctx.debug(`${command} ${payload.uuid}: ${outcome.kind} (${outcome.reason})`);
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
  enforceCaps(delivery(settings, ctx, opened));
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
    if (uploadAllowed(opened, ctx)) await flushOutbox(delivery(settings, ctx, opened), { manual: false });
  } finally {
    closeStore(opened.stateDir);
  }
}

/** The payload `command` would carry now, from the state as it is; nothing is written. */
function preview(command: EventName, eventProperties: EventProperties, settings: Settings, ctx: Context, identity: Identity, stateDir: StateDir | undefined): CaptureEvent {
  const state: State = stateDir ? readState(stateDir) : emptyState();
  const linked = linkEvent(command, state, identity.timestamp.getTime(), eventProperties, ctx.uuid);
  return buildPayload(command, linked.properties, settings, ctx, countsOf(state), identity, identitySources(stateDir, ctx, false));
}

/** What a run would see of the state dir, looked at without creating anything; closed after `look`. */
function peeking<T>(settings: Settings, ctx: Context, look: (peeked: ReturnType<typeof peekStore>) => T): T {
  const peeked = peekStore(candidates(settings, ctx), ctx.uid);
  try {
    return look(peeked);
  } finally {
    closeStore(peeked.stateDir);
  }
}

function printDryRun(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context, identity: Identity, local: boolean): void {
  const event = peeking(settings, ctx, ({ stateDir }) => preview(command, eventProperties, settings, ctx, identity, stateDir));
  // The exact body the sink would send for this event alone (PostHog: the capture event itself).
  const sink = sinkFor(settings, ctx);
  ctx.stdout(`${sink.request([event], { single: true, now: ctx.now() }).body.toString()}\n`);
  const refusal = sink.problem(event, ctx.now());
  if (refusal !== undefined) ctx.stderr(`dry run: ${sink.name} would not take this event (${refusal}); it would not be queued\n`);
  if (optOut) ctx.stderr(`dry run: telemetry is off (${optOut.detail}); nothing would be sent\n`);
  else if (local) ctx.stderr('dry run: telemetry is local-only; this would be recorded in the history, never uploaded\n');
  else ctx.stderr(`dry run: nothing was sent to ${sink.shownUrl.href}\n`);
}

export async function flush(settings: Settings, ctx: Context): Promise<FlushResult> {
  const { store: opened, refused } = openStore(candidates(settings, ctx), ctx.uid, ctx.now().getTime());
  if (!opened) return { sent: 0, dropped: 0, remaining: 0, corrupt: 0, error: `no usable state dir (${refused.map((r) => `${r.dir} ${r.reason}`).join('; ')})` };
  try {
    if (!uploadAllowed(opened, ctx)) return { sent: 0, dropped: 0, remaining: unsentCount(opened.outbox), corrupt: 0, error: 'the notice has not been shown on this host yet (the vendor requires it first)' };
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

/** The `schema` command's document. */
export function schema(settings: Settings): string {
  return `${JSON.stringify(captureSchema(settings.product), null, 2)}\n`;
}

export function history(settings: Settings, ctx: Context, json: boolean): string {
  const entries = peeking(settings, ctx, ({ stateDir }) => (stateDir ? readHistory(stateDir) : []));
  return json ? `${JSON.stringify(entries, null, 2)}\n` : formatHistory(entries);
}

/** What status reports of the state dir and of what a `start` would carry now; nothing is written. */
export function describeState(settings: Settings, ctx: Context) {
  return peeking(settings, ctx, ({ stateDir, outbox, refused }) => {
    const { properties } = preview('start', {}, settings, ctx, { uuid: ctx.uuid(), timestamp: ctx.now() }, stateDir);
    const state = stateDir ? readState(stateDir) : emptyState();
    const version = noticeVersion();
    return {
      notice_version: version,
      notice_shown: noticeShownFor(state, version),
      notice_shown_at: state.noticeShown ?? null,
      notice_shown_version: state.noticeVersion ?? null,
      notice_required: ctx.vendor.noticeRequired === true,
      endpoint: sinkFor(settings, ctx).shownUrl.href,
      machine_id: identitySource(settings.root, path.join(stateDir?.shown ?? settings.stateDir, STATE_FILE)),
      state_dir: stateDir?.shown ?? null,
      unusable_state_dirs: refused,
      queued_events: outbox ? unsentCount(outbox) : 0,
      properties,
    };
  });
}

/**
 * What `consent` prints for a web dashboard: the id and names the backend's own events carry, so
 * both channels count one machine once. Computed, never written: a random id not yet kept is
 * not kept by this either.
 */
export function dashboardConsent(settings: Settings, ctx: Context): DashboardConsent {
  return {
    enabled: true,
    distinct_id: peeking(settings, ctx, ({ stateDir }) => distinctId(settings.root, settings.product, identitySources(stateDir, ctx, false))),
    endpoint: captureUrl(settings.endpoint).href,
    api_key: settings.apiKey,
    product: settings.product,
    product_version: capped(productVersionProperties(settings.productVersion)).product_version,
    schema_version: SCHEMA_VERSION,
  };
}
