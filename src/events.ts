import { UsageError } from './errors.ts';
import type { OptionValues } from './settings.ts';

/**
 * One row per event command: its own options (a parseArgs spec) and a pure builder that turns
 * the option values into the event's properties, rejecting bad input with a UsageError.
 */

/** Free text longer than this is cut (a 120 KB argv value must neither crash nor bloat a payload). */
export const MAX_TEXT_LENGTH = 1000;
/** Repeated options (--code, --dependency) keep at most this many values. */
const MAX_LIST_LENGTH = 32;

type OptionSpec = { type: 'string'; multiple?: boolean };
export type EventProperties = Record<string, string | number | string[]>;

interface EventCommand {
  options: Record<string, OptionSpec>;
  required: readonly string[];
  build: (values: OptionValues) => EventProperties;
}

const text = { type: 'string' } as const;
const list = { type: 'string', multiple: true } as const;

export const EVENT_COMMANDS = {
  start: { options: {}, required: [], build: () => ({}) },
  stop: {
    options: { 'exit-code': text },
    required: [],
    build: (v) => ({ exit_code: integer(v, 'exit-code', -(2 ** 31), 2 ** 31 - 1) ?? 0 }),
  },
  fatal: {
    options: { process: text, thread: text, function: text, file: text, line: text, message: text },
    required: ['process', 'thread'],
    build: (v) =>
      withoutUndefined({
        fatal_process: cut(v.process),
        fatal_thread: cut(v.thread),
        fatal_function: cut(v.function),
        fatal_file: cut(v.file),
        fatal_line: integer(v, 'line', 0, 2 ** 31 - 1),
        fatal_message: cut(v.message),
      }),
  },
  'cloud-connect-fail': {
    options: { code: list, message: text },
    required: ['code'],
    build: (v) => withoutUndefined({ cloud_error_codes: cutList(v.code), cloud_message: cut(v.message) }),
  },
  'cloud-deps-fail': {
    options: { dependency: list },
    required: ['dependency'],
    build: (v) => ({ cloud_failed_dependencies: cutList(v.dependency) }),
  },
  'cloud-unavailable': {
    options: { reason: text },
    required: ['reason'],
    build: (v) => ({ cloud_unavailable_reason: cut(v.reason) as string }),
  },
  install: {
    options: { result: text, code: text },
    required: ['result'],
    build: (v) => {
      if (v.result !== 'success' && v.result !== 'failure') {
        throw new UsageError(`--result must be "success" or "failure", got "${String(v.result)}"`);
      }
      return withoutUndefined({ install_result: v.result, install_code: cut(v.code) });
    },
  },
} satisfies Record<string, EventCommand>;

export type EventName = keyof typeof EVENT_COMMANDS;

export function isEventName(name: string): name is EventName {
  return Object.hasOwn(EVENT_COMMANDS, name);
}

export function buildEventProperties(name: EventName, values: OptionValues): EventProperties {
  const command: EventCommand = EVENT_COMMANDS[name];
  for (const option of command.required) {
    const value = values[option];
    if (value === undefined) throw new UsageError(`${name} needs --${option}`);
    for (const one of Array.isArray(value) ? value : [value]) {
      if (typeof one === 'string' && one.trim() === '') throw new UsageError(`--${option} must not be empty`);
    }
  }
  return command.build(values);
}

function integer(values: OptionValues, option: string, min: number, max: number): number | undefined {
  const raw = values[option];
  if (raw === undefined) return undefined;
  const value = String(raw).trim();
  if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${option} must be a whole number from ${min} to ${max}, got "${String(raw)}"`);
  }
  return Number(value);
}

/** Cut by code points, so a cut never splits a surrogate pair into invalid UTF-16. */
export function cut(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.length <= MAX_TEXT_LENGTH) return value;
  return Array.from(value).slice(0, MAX_TEXT_LENGTH).join('');
}

function cutList(values: unknown): string[] {
  return (Array.isArray(values) ? values : [values]).slice(0, MAX_LIST_LENGTH).map((value) => cut(String(value)) as string);
}

function withoutUndefined<T extends Record<string, unknown>>(record: T): EventProperties {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as EventProperties;
}
