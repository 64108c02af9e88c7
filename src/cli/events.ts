import { UsageError } from '../errors.ts';
import type { OptionValues } from '../config/settings.ts';

/**
 * One row per event command: its own options (a parseArgs spec) and a pure builder that turns
 * the option values into the event's properties, rejecting bad input with a UsageError.
 */

/** Repeated options (--code, --dependency) keep at most this many values. */
const MAX_LIST_LENGTH = 32;

type OptionSpec = { type: 'string'; multiple?: boolean };
export type EventProperties = Record<string, string | number | string[]>;

interface EventCommand {
  options: Record<string, OptionSpec>;
  required: readonly string[];
  build: (values: OptionValues) => EventProperties;
}

const single = { type: 'string' } as const;
const repeated = { type: 'string', multiple: true } as const;

export const EVENT_COMMANDS = {
  start: { options: {}, required: [], build: () => ({}) },
  stop: {
    options: { 'exit-code': single },
    required: [],
    build: (v) => ({ exit_code: integer(v, 'exit-code', -(2 ** 31), 2 ** 31 - 1) ?? 0 }),
  },
  fatal: {
    options: { process: single, thread: single, function: single, file: single, line: single, message: single },
    required: ['process', 'thread'],
    build: (v) =>
      withoutUndefined({
        fatal_process: text(v.process),
        fatal_thread: text(v.thread),
        fatal_function: text(v.function),
        fatal_file: text(v.file),
        fatal_line: integer(v, 'line', 0, 2 ** 31 - 1),
        fatal_message: text(v.message),
      }),
  },
  'cloud-connect-fail': {
    options: { code: repeated, message: single },
    required: ['code'],
    build: (v) => withoutUndefined({ cloud_error_codes: list(v.code), cloud_message: text(v.message) }),
  },
  'cloud-deps-fail': {
    options: { dependency: repeated },
    required: ['dependency'],
    build: (v) => ({ cloud_failed_dependencies: list(v.dependency) }),
  },
  'cloud-unavailable': {
    options: { reason: single },
    required: ['reason'],
    build: (v) => ({ cloud_unavailable_reason: text(v.reason) as string }),
  },
  install: {
    options: { result: single, code: single },
    required: ['result'],
    build: (v) => {
      if (v.result !== 'success' && v.result !== 'failure') {
        throw new UsageError(`--result must be "success" or "failure", got "${String(v.result)}"`);
      }
      return withoutUndefined({ install_result: v.result, install_code: text(v.code) });
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

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function list(values: unknown): string[] {
  return (Array.isArray(values) ? values : [values]).slice(0, MAX_LIST_LENGTH).map(String);
}

function withoutUndefined<T extends Record<string, unknown>>(record: T): EventProperties {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as EventProperties;
}
