/**
 * The one door past consent: everything after the opt-out check (collect, build, then print for
 * a dry run, or store and deliver). run.ts loads it only once consent is given (or a person asked
 * to look: --dry-run, status, history), so an opted-out run never evaluates detection, crypto,
 * HTTP or outbox code. Code before the door reaches past it only through this file
 * (test/boundary.test.ts keeps it that way); what the code past it needs of the run comes in the
 * Context, and the few modules from before the door it uses are handed over by the build, not
 * bundled twice (scripts/build.ts).
 */
import path from 'node:path';
import type { EventName, EventProperties } from './cli/events.ts';
import type { Context } from './config/context.ts';
import type { Settings } from './config/settings.ts';
import { optOutAdvice, type OptOut } from './consent/optout.ts';
import type { DashboardConsent } from './dashboard/consent.ts';
import { readText } from './collect/detect/fs.ts';
import { detectSystem } from './collect/detect/index.ts';
import { distinctId, identitySource } from './collect/identity.ts';
import { SCHEMA_VERSION, toCapture, type CaptureEvent } from './collect/payload.ts';
import { createScrubber, cut } from './collect/scrub.ts';
import { productVersionProperties } from './collect/version.ts';
import { deliverNew, enforceCaps, flushOutbox, type Delivery, type FlushResult } from './deliver/delivery.ts';
import { captureUrl } from './deliver/urls.ts';
import { formatHistory, readHistory, recordHistory } from './store/history.ts';
import { migrateLegacyLayout } from './store/migrate.ts';
import { clearOutbox, openOutbox, outboxAt, store, unsentCount, type Outbox, type OutboxEvent } from './store/outbox.ts';
import { chooseStateDir, stateDirCandidates, type StateDir, type Unusable } from './store/state-dir.ts';
import { emptyState, EXECUTION_TTL_MS, MAX_EXECUTIONS, readState, updateState, type State } from './store/state.ts';

const DEFAULT_EVENTS_PER_HOUR = 10;
/** A CLI runs many commands an hour without being in a loop: its events have a limit of their own. */
const COMMAND_EVENTS_PER_HOUR = 600;
const HOUR_MS = 60 * 60 * 1000;
/** Values this tool made (ids, how a run ended): no one's text, and the scrubber would take the ids for someone's. */
const OWN_VALUES = new Set(['execution_id', 'run_id', 'previous_run_end']);
/** A passwd file with more users than this is not a list of people to look for in free text. */
const MAX_SCRUBBED_USERS = 256;

interface Store {
  stateDir: StateDir;
  outbox: Outbox;
}

function candidates(settings: Settings, ctx: Context): string[] {
  return stateDirCandidates({ configured: settings.stateDir, product: settings.product, env: ctx.env, tmpdir: ctx.tmpdir(), uid: ctx.uid });
}

/** The state dir this run uses, created if need be, with a 0.1 layout taken over. */
function openStore(settings: Settings, ctx: Context): { store?: Store; refused: Unusable[] } {
  const { stateDir, refused } = chooseStateDir(candidates(settings, ctx), ctx.uid, true);
  if (!stateDir) return { refused };
  const outbox = openOutbox(stateDir);
  if (!outbox) return { refused: [...refused, { dir: stateDir.dir, reason: 'its outbox folders cannot be created' }] };
  migrateLegacyLayout(stateDir, outbox, ctx.now().getTime());
  return { store: { stateDir, outbox }, refused };
}

/** The state dir a run would use, looked at without creating anything (dry run, status, history). */
function peekStateDir(settings: Settings, ctx: Context): { stateDir?: StateDir; refused: Unusable[] } {
  return chooseStateDir(candidates(settings, ctx), ctx.uid, false);
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

/** System files are not ours: their values are capped like free text. */
function capped<T extends Record<string, unknown>>(properties: T): T {
  return Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, typeof value === 'string' ? cut(value) : value])) as T;
}

interface Counts {
  queue_dropped: number;
  suppressed_events: number;
}

interface Identity {
  uuid: string;
  timestamp: Date;
}

/** The id kept in the state file (made and kept on first need), or a new one shown but not kept. */
function randomIdOf(stateDir: StateDir | undefined, ctx: Context, persist: boolean): () => string {
  return () => {
    const stored = stateDir && readState(stateDir).distinctId;
    if (stored) return stored;
    const id = ctx.uuid();
    if (!persist || !stateDir) return id;
    // Two first runs at once may each keep their own; the one written last stays.
    return updateState(stateDir, (state) => ({ ...state, distinctId: state.distinctId ?? id }))?.distinctId ?? id;
  };
}

function buildPayload(command: string, eventProperties: EventProperties, settings: Settings, ctx: Context, counts: Counts, identity: Identity, randomId: () => string): CaptureEvent {
  const ci = ctx.ci();
  return toCapture({
    apiKey: settings.apiKey,
    event: command,
    distinctId: distinctId(settings.root, settings.product, randomId),
    product: settings.product,
    version: capped(productVersionProperties(settings.productVersion)),
    system: capped(detectSystem({ root: settings.root, env: ctx.env, platform: ctx.platform() })),
    automation: { ci: ci.isCI, ci_name: ci.name ?? 'none', ...counts },
    eventProperties: scrubbed(eventProperties, settings, ctx),
    uuid: identity.uuid,
    timestamp: identity.timestamp,
  });
}

/**
 * What an event changes in the state besides the crash-loop limit, and the properties that
 * change gives it: runs link a daemon's start to its stop or fatal, executions link a CLI's
 * command-start to its end. What is not known (no start seen, an expired execution id) is left
 * out rather than guessed.
 */
type StateEffect = (state: State, now: number, properties: EventProperties, newId: () => string) => { state: State; properties: EventProperties };

const endRun = (ended: 'stop' | 'fatal'): StateEffect => (state, now, properties) => {
  if (!state.run) return { state, properties };
  const run = { ...state.run, ended: state.run.ended ?? ended };
  return { state: { ...state, run }, properties: { ...properties, run_id: run.id, run_uptime_s: Math.max(0, Math.round((now - run.started) / 1000)) } };
};

const inRun: StateEffect = (state, _now, properties) => ({ state, properties: state.run ? { ...properties, run_id: state.run.id } : properties });

/** The execution a command-end or command-action belongs to, as its command-start recorded it. */
function execution(state: State, properties: EventProperties): EventProperties {
  const known = state.executions[String(properties.execution_id)];
  return known ? { command_name: known.name, command_flags: known.flags, command_env_options: known.envOptions } : {};
}

const STATE_EFFECTS: Partial<Record<EventName, StateEffect>> = {
  start: (state, now, properties, newId) => {
    const run = { id: newId(), started: now };
    const previous = state.run ? (state.run.ended ?? 'unknown') : 'none';
    return { state: { ...state, run }, properties: { ...properties, run_id: run.id, previous_run_end: previous } };
  },
  stop: endRun('stop'),
  fatal: endRun('fatal'),
  'cloud-connect-fail': inRun,
  'cloud-deps-fail': inRun,
  'cloud-unavailable': inRun,
  'command-start': (state, now, properties) => {
    const id = String(properties.execution_id);
    const fresh = Object.entries(state.executions).filter(([, e]) => now - e.started < EXECUTION_TTL_MS && e.started <= now);
    const kept = fresh.sort(([, a], [, b]) => b.started - a.started).slice(0, MAX_EXECUTIONS - 1);
    const started = { name: String(properties.command_name), flags: properties.command_flags as string[], envOptions: properties.command_env_options as string[], started: now };
    return { state: { ...state, executions: { ...Object.fromEntries(kept), [id]: started } }, properties };
  },
  'command-end': (state, now, properties) => {
    const id = String(properties.execution_id);
    const { [id]: known, ...others } = state.executions;
    const duration: EventProperties = known && now >= known.started ? { duration_ms: now - known.started } : {};
    return { state: { ...state, executions: others }, properties: { ...properties, ...execution(state, properties), ...duration } };
  },
  'command-action': (state, _now, properties) => ({ state, properties: { ...properties, command_name: execution(state, properties).command_name ?? 'unknown' } }),
};

function withRun(command: EventName, state: State, now: number, properties: EventProperties, newId: () => string) {
  const effect = STATE_EFFECTS[command];
  return effect ? effect(state, now, properties, newId) : { state, properties };
}

type Admission = { admitted: true; state: State; counts: Counts; properties: EventProperties } | { admitted: false; outcome: 'suppressed' | 'dropped'; reason: string };

/**
 * Decides and records in one state update: the crash-loop limit (at most `eventsPerHour` events
 * of one kind per hour, a fixed window per kind; the rest are counted and the count rides on
 * the next event created), the counts this event carries, and its run or execution.
 */
function admit(store: Store, command: EventName, properties: EventProperties, ctx: Context): Admission {
  const perHour = command.startsWith('command-') ? COMMAND_EVENTS_PER_HOUR : (ctx.vendor.eventsPerHour ?? DEFAULT_EVENTS_PER_HOUR);
  const now = ctx.now().getTime();
  let admission: Admission = { admitted: false, outcome: 'suppressed', reason: `more than ${perHour} ${command} events this hour (crash-loop limit)` };
  const written = updateState(store.stateDir, (before) => {
    const linked = withRun(command, before, now, properties, ctx.uuid);
    const state = linked.state;
    const window = state.windows[command];
    const current = window && now >= window.start && now - window.start < HOUR_MS ? window : { start: now, count: 0 };
    if (current.count >= perHour) return { ...state, suppressed: state.suppressed + 1 };
    admission = { admitted: true, state, counts: { queue_dropped: state.dropped, suppressed_events: state.suppressed }, properties: linked.properties };
    return { ...state, windows: { ...state.windows, [command]: { start: current.start, count: current.count + 1 } }, suppressed: 0, dropped: 0 };
  });
  // Decided once: with nothing stored the limit could not hold, so nothing is sent.
  return written ? admission : { admitted: false, outcome: 'dropped', reason: 'the state dir cannot be written (full or read-only)' };
}

function delivery(settings: Settings, ctx: Context, { stateDir, outbox }: Store): Delivery {
  const randomId = randomIdOf(stateDir, ctx, true);
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
      return buildPayload(event, own, eventSettings, ctx, counts, { uuid, timestamp: new Date(timestamp) }, randomId);
    },
  };
}

/** The first-run notice, once per state dir: what is collected and how to say no. Never on stdout. */
function showNotice(store: Store, settings: Settings, ctx: Context): void {
  if (!settings.showNotice && (ctx.backgroundChild || !ctx.stderrIsTTY())) return;
  if (readState(store.stateDir).noticeShown) return;
  const advice = optOutAdvice(ctx.vendor);
  ctx.stderr(
    `${settings.product} sends anonymous usage statistics: OS, kernel, architecture, virtualization and\n` +
      `container type, product version, and start/stop/crash events. Never host names, users, paths or\n` +
      `addresses. Opt out with ${advice.variable}, or: ${advice.command}. See --dry-run for the data.\n`,
  );
  // Not writable: the notice may show again, which errs on the side of telling.
  updateState(store.stateDir, (state) => ({ ...state, noticeShown: ctx.now().toISOString() }));
}

/** `childArgs`: the command line the --background child runs. */
export async function report(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context, childArgs: readonly string[]): Promise<void> {
  const identity = { uuid: ctx.uuid(), timestamp: ctx.now() };
  if (settings.dryRun) return printDryRun(command, eventProperties, settings, optOut, ctx, identity);
  const { store: opened, refused } = openStore(settings, ctx);
  if (!opened) {
    ctx.debug(`not sending ${command}: no usable state dir (${refused.map((r) => `${r.dir} ${r.reason}`).join('; ')})`);
    return;
  }
  const admission = admit(opened, command, eventProperties, ctx);
  if (!admission.admitted) {
    recordHistory(opened.stateDir, [{ time: identity.timestamp.toISOString(), event: command, uuid: identity.uuid, outcome: admission.outcome, reason: admission.reason }]);
    ctx.debug(`not sending ${command}: ${admission.reason}`);
    return;
  }
  if (settings.background) return storeForBackground(opened, command, admission, settings, ctx, identity, childArgs);
  const payload = buildPayload(command, admission.properties, settings, ctx, admission.counts, identity, randomIdOf(opened.stateDir, ctx, true));
  const outcome = await deliverNew(delivery(settings, ctx, opened), payload, admission.state);
  showNotice(opened, settings, ctx);
  ctx.debug(`${command} ${payload.uuid}: ${outcome.kind} (${outcome.reason})`);
}

/**
 * --background: the event is made durable before the caller is let go, unfinished (what is
 * collected comes when it is sent, by the detached child or any later run), so a child killed
 * by a service manager's stop only delays it.
 */
function storeForBackground(opened: Store, command: EventName, admission: Extract<Admission, { admitted: true }>, settings: Settings, ctx: Context, identity: Identity, childArgs: readonly string[]): void {
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
    return;
  }
  recordHistory(opened.stateDir, [{ time: event.timestamp, event: command, uuid: event.uuid, outcome: 'queued', reason: 'stored for the background sender' }]);
  // The background sender may never get through either: the caps hold here as for any queued event.
  enforceCaps(delivery(settings, ctx, opened));
  // Only where asked: a terminal check loads node:tty (and node:net), a quarter of this caller's run.
  if (settings.showNotice) showNotice(opened, settings, ctx);
  try {
    ctx.spawnDetached(childArgs);
  } catch (error) {
    // EAGAIN under a process limit, say: the event waits in the outbox for the next run.
    ctx.debug(`${command} ${identity.uuid} waits in the outbox: ${(error as Error).message}`);
  }
}

/** The --background child: sends what waits, as any later run would. */
export async function sendWaiting(settings: Settings, ctx: Context): Promise<void> {
  const { store: opened } = openStore(settings, ctx);
  if (opened) await flushOutbox(delivery(settings, ctx, opened), { manual: false });
}

/** The payload `command` would carry now, from the state as it is; nothing is written. */
function preview(command: EventName, eventProperties: EventProperties, settings: Settings, ctx: Context, identity: Identity, stateDir: StateDir | undefined): CaptureEvent {
  const state = stateDir ? readState(stateDir) : emptyState();
  const linked = withRun(command, state, identity.timestamp.getTime(), eventProperties, ctx.uuid);
  const counts = { queue_dropped: state.dropped, suppressed_events: state.suppressed };
  return buildPayload(command, linked.properties, settings, ctx, counts, identity, randomIdOf(stateDir, ctx, false));
}

function printDryRun(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context, identity: Identity): void {
  ctx.stdout(`${JSON.stringify(preview(command, eventProperties, settings, ctx, identity, peekStateDir(settings, ctx).stateDir))}\n`);
  ctx.stderr(optOut ? `dry run: telemetry is off (${optOut.detail}); nothing would be sent\n` : `dry run: nothing was sent to ${captureUrl(settings.endpoint).href}\n`);
}

export async function flush(settings: Settings, ctx: Context): Promise<FlushResult & { refused: Unusable[] }> {
  const { store: opened, refused } = openStore(settings, ctx);
  if (!opened) return { sent: 0, dropped: 0, remaining: 0, corrupt: 0, error: 'no usable state dir', refused };
  return { ...(await flushOutbox(delivery(settings, ctx, opened), { manual: true })), refused };
}

/** Consent withdrawn covers what was collected but not yet sent. */
export function clearWaiting(settings: Settings, ctx: Context): number {
  const { stateDir } = peekStateDir(settings, ctx);
  if (!stateDir) return 0;
  updateState(stateDir, (state) => ({ ...state, dropped: 0 }));
  return clearOutbox(outboxAt(stateDir));
}

export function history(settings: Settings, ctx: Context, json: boolean): string {
  const { stateDir } = peekStateDir(settings, ctx);
  const entries = stateDir ? readHistory(stateDir) : [];
  return json ? `${JSON.stringify(entries, null, 2)}\n` : formatHistory(entries);
}

/** What status reports of the state dir and of what a `start` would carry now; nothing is written. */
export function describeState(settings: Settings, ctx: Context) {
  const { stateDir, refused } = peekStateDir(settings, ctx);
  const { properties } = preview('start', {}, settings, ctx, { uuid: ctx.uuid(), timestamp: ctx.now() }, stateDir);
  return {
    endpoint: captureUrl(settings.endpoint).href,
    machine_id: identitySource(settings.root, path.join(stateDir?.dir ?? settings.stateDir, 'state.json')),
    state_dir: stateDir?.dir ?? null,
    unusable_state_dirs: refused,
    queued_events: stateDir ? unsentCount(outboxAt(stateDir)) : 0,
    properties,
  };
}

/**
 * What `consent` prints for a web dashboard: the id and names the backend's own events carry, so
 * both channels count one machine once. Computed, never written: a random id not yet kept is
 * not kept by this either.
 */
export function dashboardConsent(settings: Settings, ctx: Context): DashboardConsent {
  const { stateDir } = peekStateDir(settings, ctx);
  return {
    enabled: true,
    distinct_id: distinctId(settings.root, settings.product, randomIdOf(stateDir, ctx, false)),
    endpoint: captureUrl(settings.endpoint).href,
    api_key: settings.apiKey,
    product: settings.product,
    product_version: capped(productVersionProperties(settings.productVersion)).product_version,
    schema_version: SCHEMA_VERSION,
  };
}
