import { UsageError } from '../errors.ts';
import type { OptionValues } from '../config/settings.ts';
import { EVENT_COMMANDS, isEventName, type EventName } from './events.ts';
import { LEGACY_FORMS } from './legacy.ts';

type Spec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

/** Options of every event command (CONTRACT.md "Options"); the management commands take them too. */
const SETTINGS_OPTIONS = {
  'disable-telemetry': { type: 'boolean' },
  'config-dir': { type: 'string' },
  'state-dir': { type: 'string' },
  endpoint: { type: 'string' },
  'api-key': { type: 'string' },
  'product-version': { type: 'string' },
  timeout: { type: 'string' },
  'log-file': { type: 'string' },
  root: { type: 'string' },
  sink: { type: 'string' },
} satisfies Spec;

const EVENT_ONLY_OPTIONS = {
  background: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'show-notice': { type: 'boolean' },
} satisfies Spec;

const json = { json: { type: 'boolean' } } satisfies Spec;

const MANAGEMENT_COMMANDS = {
  status: { ...SETTINGS_OPTIONS, ...json },
  // The management commands take every setting, so a script can pass one set of flags to all.
  disable: SETTINGS_OPTIONS,
  enable: SETTINGS_OPTIONS,
  flush: SETTINGS_OPTIONS,
  history: { ...SETTINGS_OPTIONS, ...json },
  consent: SETTINGS_OPTIONS,
  local: SETTINGS_OPTIONS,
  schema: SETTINGS_OPTIONS,
} satisfies Record<string, Spec>;
type ManagementName = keyof typeof MANAGEMENT_COMMANDS;

const GLOBAL_OPTIONS = {
  help: { type: 'boolean' },
  version: { type: 'boolean' },
} satisfies Spec;

export type Invocation =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'event'; command: EventName; values: OptionValues }
  | { kind: 'management'; command: ManagementName; values: OptionValues };

function commandSpec(command: string, optOutFlag: string | undefined): Spec | undefined {
  if (isEventName(command)) return withOptOutFlag({ ...SETTINGS_OPTIONS, ...EVENT_ONLY_OPTIONS, ...EVENT_COMMANDS[command].options }, optOutFlag);
  if (Object.hasOwn(MANAGEMENT_COMMANDS, command)) return withOptOutFlag(MANAGEMENT_COMMANDS[command as ManagementName], optOutFlag);
  return undefined;
}

/** The vendor's own spelling of --disable-telemetry (e.g. --disable-analytics), wherever that one applies. */
function withOptOutFlag(spec: Spec, optOutFlag: string | undefined): Spec {
  if (optOutFlag === undefined || !Object.hasOwn(spec, 'disable-telemetry')) return spec;
  return { ...spec, [optOutFlag.slice(2)]: spec['disable-telemetry'] };
}

/** Every option any command knows, so one pass can find the command wherever it stands. */
function knownOptions(optOutFlag: string | undefined): Spec {
  const union: Spec = { ...GLOBAL_OPTIONS };
  for (const command of [...Object.keys(EVENT_COMMANDS), ...Object.keys(MANAGEMENT_COMMANDS)]) Object.assign(union, commandSpec(command, optOutFlag));
  return union;
}

/** The tool's long options, without "--" (a vendor's opt-out flag must not take one of them). */
export function optionNames(): string[] {
  return Object.keys(knownOptions(undefined));
}

interface OptionToken {
  name: string;
  value: string | true;
}

/**
 * getopt_long's rules, which daemons' C callers already follow: a string option takes the next
 * argument as its value whatever it looks like, so `--message -12 ENOMEM` or `--code -1` is a
 * value, not an option. After `--`, and (in the legacy form) anything that is not a known
 * option, is positional.
 */
function tokenize(argv: readonly string[], options: Spec): { tokens: OptionToken[]; positionals: string[] } {
  const tokens: OptionToken[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const legacy = positionals.length > 0 && Object.hasOwn(LEGACY_FORMS, positionals[0]);
    const long = /^--([^=]+)(?:=([\s\S]*))?$/.exec(arg);
    const option = long && Object.hasOwn(options, long[1]) ? options[long[1]] : undefined;
    if (option === undefined) {
      if (arg === '-h') tokens.push({ name: 'help', value: true });
      else if (arg.startsWith('-') && arg !== '-' && !legacy) throw new UsageError(`unknown option ${long ? `--${long[1]}` : `"${arg}"`}`);
      else positionals.push(arg);
      continue;
    }
    const [, name, inline] = long as RegExpExecArray;
    if (option.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
      tokens.push({ name, value: true });
    } else if (inline !== undefined) {
      tokens.push({ name, value: inline });
    } else if (i + 1 < argv.length) {
      tokens.push({ name, value: argv[++i] });
    } else {
      throw new UsageError(`option --${name} needs a value`);
    }
  }
  return { tokens, positionals };
}

export function parseInvocation(argv: readonly string[], optOutFlag?: string): Invocation {
  const { tokens, positionals } = tokenize(argv, knownOptions(optOutFlag));
  if (tokens.some((token) => token.name === 'help')) return { kind: 'help' };
  if (tokens.some((token) => token.name === 'version')) return { kind: 'version' };
  const [name, ...rest] = positionals;
  if (name === undefined) throw new UsageError('no command given');
  const legacy = Object.hasOwn(LEGACY_FORMS, name) ? LEGACY_FORMS[name] : undefined;
  const command = legacy ? legacy.command : name;
  const spec = commandSpec(command, optOutFlag);
  if (spec === undefined) throw new UsageError(`unknown command "${name}"`);
  const values: Record<string, string | boolean | string[]> = {};
  for (const { name: option, value } of tokens) {
    if (!Object.hasOwn(spec, option)) throw new UsageError(`option --${option} does not apply to "${command}"`);
    // A single-valued option given twice: the last one wins, as getopt callers expect.
    values[option] = spec[option].multiple ? [...((values[option] as string[] | undefined) ?? []), value as string] : value;
  }
  if (legacy) Object.assign(values, legacy.values(rest, name));
  else if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  return isEventName(command)
    ? { kind: 'event', command, values }
    : { kind: 'management', command: command as ManagementName, values };
}
