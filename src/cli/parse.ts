import { parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';
import { EVENT_COMMANDS, isEventName, type EventName } from './events.ts';
import type { OptionValues } from '../config/settings.ts';

type Spec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/** Options of every event command (CONTRACT.md "Options"). */
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
} satisfies Spec;

const EVENT_ONLY_OPTIONS = {
  background: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} satisfies Spec;

const json = { json: { type: 'boolean' } } satisfies Spec;

export const MANAGEMENT_COMMANDS = {
  status: { ...SETTINGS_OPTIONS, ...json },
  // The management commands take every setting, so a script can pass one set of flags to all.
  disable: SETTINGS_OPTIONS,
  enable: SETTINGS_OPTIONS,
  flush: SETTINGS_OPTIONS,
  history: { ...SETTINGS_OPTIONS, ...json },
  consent: SETTINGS_OPTIONS,
} satisfies Record<string, Spec>;
type ManagementName = keyof typeof MANAGEMENT_COMMANDS;

const GLOBAL_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} satisfies Spec;

export type Invocation =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'event'; command: EventName; values: OptionValues }
  | { kind: 'management'; command: ManagementName; values: OptionValues };

function commandSpec(command: string): Spec | undefined {
  if (isEventName(command)) return { ...SETTINGS_OPTIONS, ...EVENT_ONLY_OPTIONS, ...EVENT_COMMANDS[command].options };
  if (Object.hasOwn(MANAGEMENT_COMMANDS, command)) return MANAGEMENT_COMMANDS[command as ManagementName];
  return undefined;
}

/** Every option any command knows, so one pass can find the command wherever it stands. */
function unionSpec(): Spec {
  const union: Spec = { ...GLOBAL_OPTIONS };
  for (const command of [...Object.keys(EVENT_COMMANDS), ...Object.keys(MANAGEMENT_COMMANDS)]) {
    for (const [name, option] of Object.entries(commandSpec(command) as Spec)) {
      union[name] = { ...option, multiple: Boolean(union[name]?.multiple || option.multiple) };
    }
  }
  return union;
}

export function parseInvocation(argv: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: unionSpec(), allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]);
  }
  const { values, positionals, tokens } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [name, ...rest] = positionals;
  if (name === undefined) throw new UsageError('no command given');
  const legacy = LEGACY_FORMS[name];
  const command = legacy ? legacy.command : name;
  const spec = commandSpec(command);
  if (spec === undefined) throw new UsageError(`unknown command "${name}"`);
  for (const token of tokens) {
    if (token.kind === 'option' && !Object.hasOwn(spec, token.name) && !Object.hasOwn(GLOBAL_OPTIONS, token.name)) {
      throw new UsageError(`option --${token.name} does not apply to "${command}"`);
    }
  }
  const own: Record<string, OptionValues[string]> = {};
  for (const [key, value] of Object.entries(values)) {
    // A single-valued option given twice: the last one wins, as with any parseArgs option.
    own[key] = (Array.isArray(value) && !spec[key]?.multiple ? value[value.length - 1] : value) as OptionValues[string];
  }
  if (legacy) Object.assign(own, legacy.values(rest, name));
  else if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  return isEventName(command)
    ? { kind: 'event', command, values: own }
    : { kind: 'management', command: command as ManagementName, values: own };
}

interface LegacyForm {
  command: EventName;
  values: (args: string[], name: string) => Record<string, string | string[]>;
}

function legacyArgs(name: string, args: string[], min: number, max: number): void {
  if (args.length < min || args.length > max) {
    throw new UsageError(`${name} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`);
  }
}

/** netdata's daemon log.c writes `%04lu@%-10.10s:%-15.15s/%d` (line@file:function/errno). */
const NETDATA_FATAL_DATA = /^(\d+)@(.*?)\s*:(.*?)\s*\/(-?\d+)$/;

/** The positional form daemons already use with anonymous-statistics.sh. */
const LEGACY_FORMS: Record<string, LegacyForm> = {
  START: {
    command: 'start',
    // netdata calls `START - -`: the placeholders carry nothing.
    values: (args, name) => (legacyArgs(name, args, 0, 2), {}),
  },
  EXIT: {
    command: 'stop',
    values: (args, name) => {
      legacyArgs(name, args, 1, 2);
      if (args[0] !== 'OK' && args[0] !== 'ERROR') throw new UsageError(`EXIT takes OK or ERROR, got "${args[0]}"`);
      return { 'exit-code': args[0] === 'OK' ? '0' : '1' };
    },
  },
  FATAL: {
    command: 'fatal',
    values: (args, name) => {
      legacyArgs(name, args, 1, 2);
      const [where, data = ''] = args;
      const colon = where.indexOf(':');
      const values: Record<string, string> = {
        process: colon === -1 ? where : where.slice(0, colon),
        thread: colon === -1 ? 'unknown' : where.slice(colon + 1) || 'unknown',
      };
      const parsed = NETDATA_FATAL_DATA.exec(data.trim());
      if (parsed) Object.assign(values, { line: String(Number(parsed[1])), file: parsed[2], function: parsed[3] });
      if (data.trim() !== '' && data !== '-') values.message = data;
      return values;
    },
  },
  ACLK_CONN_FAIL: {
    command: 'cloud-connect-fail',
    values: (args, name) => {
      legacyArgs(name, args, 1, 2);
      const [result, data] = args;
      const values: Record<string, string | string[]> = { code: [result] };
      if (data !== undefined && data !== '-') values.message = data;
      return values;
    },
  },
};

export const HELP = `Usage: anonymous-statistics <command> [options]

Reports one anonymous event to a PostHog-compatible capture endpoint, or manages consent.
Nothing is read or sent when telemetry is opted out.

Event commands:
  start                                   the daemon started
  stop [--exit-code N]                    the daemon stopped (default exit code 0)
  fatal --process P --thread T [--function F] [--file PATH] [--line N] [--message M]
  cloud-connect-fail --code C [--code C ...] [--message M]
  cloud-deps-fail --dependency NAME [--dependency NAME ...]
  cloud-unavailable --reason R
  install --result success|failure [--code C]
  Legacy forms: START, EXIT OK|ERROR, FATAL <program:thread> <data>, ACLK_CONN_FAIL <result> <data>

Management commands:
  status [--json]     is telemetry on, which opt-out turned it off, and what would be sent
  disable             create the opt-out marker file in the config dir; delete queued events
  enable              remove the opt-out marker file
  flush               send events queued while offline
  history [--json]    what was sent, queued or dropped lately
  consent             the JSON document a web dashboard starts its telemetry with
                      ({"enabled":false} when opted out); writes and sends nothing

Options of every event command (a flag beats its variable, which beats the build default):
  --disable-telemetry        opt out (also DISABLE_TELEMETRY or DO_NOT_TRACK set to anything)
  --config-dir DIR           where the opt-out marker is looked for   [TELEMETRY_CONFIG_DIR]
  --state-dir DIR            machine id and offline queue             [TELEMETRY_STATE_DIR]
  --endpoint URL             capture endpoint; https:, or http: for loopback only [TELEMETRY_ENDPOINT]
  --api-key KEY              project API key                          [TELEMETRY_API_KEY]
  --product-version V        the product's version                    [TELEMETRY_PRODUCT_VERSION]
  --timeout MS               time budget of the whole run, default 2000 [TELEMETRY_TIMEOUT_MS]
  --background               return at once; a detached child sends
  --log-file PATH            append every payload sent, one JSON per line [TELEMETRY_LOG_FILE]
  --dry-run                  print the payload, send and write nothing
  --root DIR                 read system facts under DIR instead of /
  -h, --help                 this text
  --version                  the version of this tool

Examples:
  anonymous-statistics start --product-version 1.44.0
  anonymous-statistics stop --exit-code 1
  anonymous-statistics fatal --process mydaemon --thread main --file db.c --line 120
  anonymous-statistics install --result success --dry-run
  DO_NOT_TRACK=1 anonymous-statistics start      # sends nothing
`;
