import { UsageError } from '../errors.ts';
import type { OptionValues } from '../config/settings.ts';
import { isUuid } from '../../shared/uuid.ts';

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
  'command-start': {
    options: { name: single, option: repeated, 'env-option': repeated },
    required: ['name'],
    build: (v) => ({ command_name: commandName(v.name as string), command_flags: optionNames(v.option, '--option'), command_env_options: optionNames(v['env-option'], '--env-option') }),
  },
  'command-end': {
    options: { 'execution-id': single, 'exit-code': single },
    required: ['execution-id', 'exit-code'],
    build: (v) => ({ execution_id: executionId(v), exit_code: integer(v, 'exit-code', -(2 ** 31), 2 ** 31 - 1) as number }),
  },
  'command-action': {
    options: { 'execution-id': single, action: single },
    required: ['execution-id', 'action'],
    build: (v) => ({ execution_id: executionId(v), command_action: text(v.action) as string }),
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
  if (values === undefined) return [];
  return (Array.isArray(values) ? values : [values]).slice(0, MAX_LIST_LENGTH).map(String);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A command as the vendor declares it: words of a name each (`converge`, `repo add`), never argv. */
function commandName(raw: string): string {
  const name = raw.trim().replace(/\s+/g, ' ');
  if (!name.split(' ').every((word) => NAME.test(word)) || name.length > 128) {
    throw new UsageError(`--name must be the command's name (letters, digits, ".", "_", "-", words apart), got "${raw}"`);
  }
  return name;
}

/**
 * Option names only, never their values: `--tag=v1` and `tag` both give `tag`, so a CLI may pass
 * what it parsed as it was typed.
 */
function optionNames(values: unknown, option: string): string[] {
  return list(values).map((raw) => {
    const name = raw.trim().replace(/^-{1,2}/, '').split('=')[0];
    if (!NAME.test(name)) throw new UsageError(`${option} takes an option's name (letters, digits, ".", "_", "-"), got "${raw}"`);
    return name;
  });
}

function executionId(values: OptionValues): string {
  const id = String(values['execution-id']).trim();
  if (!isUuid(id)) throw new UsageError(`--execution-id must be the id command-start printed (a UUID), got "${String(values['execution-id'])}"`);
  return id.toLowerCase();
}

function withoutUndefined<T extends Record<string, unknown>>(record: T): EventProperties {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as EventProperties;
}
