import type { EventName, EventProperties } from '../../before-consent/cli/events.ts';
import { UUID_PATTERN } from '../../shared/uuid.ts';

/**
 * What the state file means, as pure functions `(state, ...) -> state`: no disk here
 * (state-file.ts reads and writes it). The crash-loop limit is not in it: slot files hold that
 * (limits.ts), so concurrent runs cannot talk each other past it. Every value is checked when
 * read; one that is malformed, or that a far-off clock made absurd, is dropped, so a planted or
 * stale state can neither stall nor steer a run.
 */
export interface State {
  /** The random distinct id, where there is no machine id. */
  distinctId?: string;
  /** Keys distinct_id's hash of the machine id with it; forgotten by `disable`, so a later id is new. */
  idSalt?: string;
  /** When the notice was last shown on this host, and its version then. */
  noticeShown?: string;
  noticeVersion?: string;
  /** Events the full outbox dropped since the last event created (rides on the next one). */
  dropped: number;
  /** Events the crash-loop limit held back since the last event created (rides on the next one). */
  suppressed: number;
  /** Per endpoint: failures in a row and the earliest next attempt (epoch ms). */
  backoff: Record<string, { failures: number; next: number }>;
  /** The daemon's current run (start to stop or fatal). */
  run?: { id: string; started: number; ended?: 'stop' | 'fatal' };
  /** CLI command executions by id, for command-end / command-action. */
  executions: Record<string, Execution>;
}

export interface Execution {
  name: string;
  flags: string[];
  envOptions: string[];
  started: number;
}

/** Executions kept at most (newest first), and for at most a day: a CLI's command ends long before. */
export const MAX_EXECUTIONS = 200;
export const EXECUTION_TTL_MS = 24 * 60 * 60 * 1000;
const BACKOFF_BASE_MS = 30_000;
/** 32 random bytes, hex. */
export const ID_SALT = /^[0-9a-f]{64}$/;
export const BACKOFF_MAX_MS = 6 * 60 * 60 * 1000;

export function emptyState(): State {
  return { dropped: 0, suppressed: 0, backoff: {}, executions: {} };
}

const count = (value: unknown) => (Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0);
const isTime = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const strings = (value: unknown) => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);

function entries<T>(value: unknown, keep: (item: Record<string, unknown>) => T | undefined): Record<string, T> {
  const result: Record<string, T> = {};
  if (!isRecord(value)) return result;
  for (const [key, item] of Object.entries(value)) {
    const kept = isRecord(item) ? keep(item) : undefined;
    if (kept !== undefined) result[key] = kept;
  }
  return result;
}

/** Only what a run of ours could have written survives; the rest reads as never written. */
export function parseState(text: string): State {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return emptyState();
  }
  const state = emptyState();
  if (!isRecord(raw)) return state;
  if (typeof raw.distinctId === 'string' && UUID_PATTERN.test(raw.distinctId)) state.distinctId = raw.distinctId;
  if (typeof raw.idSalt === 'string' && ID_SALT.test(raw.idSalt)) state.idSalt = raw.idSalt;
  if (typeof raw.noticeShown === 'string' && typeof raw.noticeVersion === 'string') {
    state.noticeShown = raw.noticeShown;
    state.noticeVersion = raw.noticeVersion;
  }
  state.dropped = count(raw.dropped);
  state.suppressed = count(raw.suppressed);
  state.backoff = entries(raw.backoff, (b) => (isTime(b.next) ? { failures: count(b.failures), next: b.next as number } : undefined));
  const run = raw.run;
  if (isRecord(run) && typeof run.id === 'string' && UUID_PATTERN.test(run.id) && isTime(run.started)) {
    state.run = { id: run.id, started: run.started as number, ...(run.ended === 'stop' || run.ended === 'fatal' ? { ended: run.ended } : {}) };
  }
  state.executions = entries(raw.executions, (e) =>
    typeof e.name === 'string' && isTime(e.started) ? { name: e.name, flags: strings(e.flags), envOptions: strings(e.envOptions), started: e.started as number } : undefined,
  );
  return state;
}

/**
 * What an event changes in the state, and the properties that change gives it: runs link a
 * daemon's start to its stop or fatal, executions link a CLI's command-start to its end. What is
 * not known (no start seen, an expired execution id) is left out rather than guessed.
 */
type Link = (state: State, now: number, properties: EventProperties, newId: () => string) => { state: State; properties: EventProperties };

const endRun = (ended: 'stop' | 'fatal'): Link => (state, now, properties) => {
  if (!state.run) return { state, properties };
  const run = { ...state.run, ended: state.run.ended ?? ended };
  return { state: { ...state, run }, properties: { ...properties, run_id: run.id, run_uptime_s: Math.max(0, Math.round((now - run.started) / 1000)) } };
};

const inRun: Link = (state, _now, properties) => ({ state, properties: state.run ? { ...properties, run_id: state.run.id } : properties });

/** The execution a command-end or command-action belongs to, as its command-start recorded it. */
function execution(state: State, properties: EventProperties): EventProperties {
  const known = state.executions[String(properties.execution_id)];
  return known ? { command_name: known.name, command_flags: known.flags, command_env_options: known.envOptions } : {};
}

const LINKS: Partial<Record<EventName, Link>> = {
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

export function linkEvent(command: EventName, state: State, now: number, properties: EventProperties, newId: () => string): { state: State; properties: EventProperties } {
  const link = LINKS[command];
  return link ? link(state, now, properties, newId) : { state, properties };
}

export interface Counts {
  queue_dropped: number;
  suppressed_events: number;
}

/** The counts an event created now carries; they start again from zero after it. */
export function countsOf(state: State): Counts {
  return { queue_dropped: state.dropped, suppressed_events: state.suppressed };
}

export function countsTaken(state: State): State {
  return { ...state, dropped: 0, suppressed: 0 };
}

export function suppressedOne(state: State): State {
  return { ...state, suppressed: state.suppressed + 1 };
}

export function droppedMore(state: State, dropped: number): State {
  return { ...state, dropped: state.dropped + dropped };
}

/**
 * When the next attempt at `endpoint` may be made. A time further off than the ceiling from now
 * was not set by a run whose clock agreed with ours (it was far ahead, or the file was planted):
 * it is ignored, not clamped, since a clamp to now + ceiling would move with the clock and never pass.
 */
export function nextAttempt(state: State, endpoint: string, now: number): number {
  const next = state.backoff[endpoint]?.next ?? 0;
  return next > now + BACKOFF_MAX_MS ? 0 : next;
}

/** One more failure in a row: exponential, jittered by `random` in [0, 1), at least the receiver's Retry-After. */
export function afterFailure(state: State, endpoint: string, now: number, random: number, retryAfterMs: number | undefined): State {
  const failures = Math.min(64, (state.backoff[endpoint]?.failures ?? 0) + 1);
  const exponential = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1)) * (0.5 + random);
  const delay = Math.min(BACKOFF_MAX_MS, Math.max(exponential, retryAfterMs ?? 0));
  return { ...state, backoff: { ...state.backoff, [endpoint]: { failures, next: Math.max(0, Math.round(now + delay)) } } };
}

export function afterSuccess(state: State, endpoint: string): State {
  if (!state.backoff[endpoint]) return state;
  const { [endpoint]: _cleared, ...others } = state.backoff;
  return { ...state, backoff: others };
}

/** 256 bits from two of the run's random UUIDs (244 random bits), hex, as ID_SALT says. */
export function newSalt(newId: () => string): string {
  return `${newId()}${newId()}`.replaceAll('-', '');
}

/**
 * The ids distinct_id is made from, made with the first event admitted and kept from then on.
 * Two first runs at once may each make them; the ones kept first stay.
 */
export function withIdentity(state: State, newId: () => string): State {
  if (state.idSalt && state.distinctId) return state;
  return { ...state, idSalt: state.idSalt ?? newSalt(newId), distinctId: state.distinctId ?? newId() };
}

/** Consent withdrawn: no id of the past can be derived again. */
export function forgetIdentity(state: State): State {
  const { distinctId: _id, idSalt: _salt, ...rest } = state;
  return rest;
}

export function withNoticeShown(state: State, at: string, version: string): State {
  return { ...state, noticeShown: at, noticeVersion: version };
}

export function noticeShownFor(state: State, version: string): boolean {
  return state.noticeShown !== undefined && state.noticeVersion === version;
}

/**
 * What a run does with an event, once admitted. `record`: local-only mode, kept in the history,
 * never uploaded. `tell`: show the notice and hold the event (the run that tells sends
 * nothing). `hold`: no one can be told here, but the vendor requires the notice first. `send`.
 */
export type Disposition = 'record' | 'tell' | 'hold' | 'send';

export interface DispositionInput {
  local: boolean;
  /** A person can read a notice now: stderr is a terminal, or an installer asked (--show-notice). */
  canTell: boolean;
  /** The notice of this version was shown on this host. */
  told: boolean;
  noticeRequired: boolean;
}

export function disposition({ local, canTell, told, noticeRequired }: DispositionInput): Disposition {
  if (local) return 'record';
  if (told) return 'send';
  if (canTell) return 'tell';
  return noticeRequired ? 'hold' : 'send';
}

/** Whether what waits in the outbox may go: not before the notice, where the vendor requires it. */
export function mayUpload(state: State, version: string, noticeRequired: boolean): boolean {
  return !noticeRequired || noticeShownFor(state, version);
}
