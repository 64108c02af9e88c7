import type { EventName } from '../../before-consent/cli/events.ts';

/**
 * Every property an event can carry: what it is and why it is collected. This table is the one
 * source: toCapture (payload.ts) refuses a property it does not list, `schema` prints it as a
 * JSON Schema, the notice's version is a hash of its names, and the README's "What we collect and
 * why" table is checked against it (test/readme.test.ts).
 */
type PropertyType =
  | { type: 'string'; const?: string; enum?: readonly string[]; pattern?: string }
  | { type: 'integer'; minimum?: number }
  | { type: 'boolean'; const?: boolean }
  | { type: 'array'; items: { type: 'string' } };

export type PropertyDefinition = PropertyType & { what: string; why: string };

const text = { type: 'string' } as const;
const count = { type: 'integer', minimum: 0 } as const;
const strings = { type: 'array', items: { type: 'string' } } as const;
const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const uuid = { type: 'string', pattern: UUID } as const;

/** Bumped whenever a property is added, removed or changes meaning. */
export const SCHEMA_VERSION = 2;

type OsField = 'name' | 'id' | 'id_like' | 'version' | 'version_id' | 'detection';

function osRelease<P extends 'host_os' | 'container_os'>(prefix: P, whose: string, why: string): Record<`${P}_${OsField}`, PropertyDefinition> {
  const none = prefix === 'container_os' ? '; `none` outside a container' : '; in a container, from the host\'s os-release where it exposes it';
  return {
    [`${prefix}_name`]: { ...text, what: `${whose} os-release NAME, as written, or \`unknown\`${none}`, why },
    [`${prefix}_id`]: { ...text, what: `${whose} os-release ID, or \`unknown\`${none}`, why },
    [`${prefix}_id_like`]: { ...text, what: `${whose} os-release ID_LIKE, or \`unknown\`${none}`, why },
    [`${prefix}_version`]: { ...text, what: `${whose} os-release VERSION, or \`unknown\`${none}`, why },
    [`${prefix}_version_id`]: { ...text, what: `${whose} os-release VERSION_ID, or \`unknown\`${none}`, why },
    [`${prefix}_detection`]: { ...text, what: `which file the ${prefix.replace('_', ' ')} fields came from (e.g. \`/etc/os-release\`)`, why: 'trust in the answer' },
  } as Record<`${P}_${OsField}`, PropertyDefinition>;
}

export const PROPERTIES = {
  distinct_id: {
    ...uuid,
    what: 'an id for this product on this machine: HMAC-SHA256 of /etc/machine-id keyed by the product and a random salt kept in the state dir (a random id kept there where there is no machine id); `disable` forgets the salt, so after `enable` the id is new',
    why: 'count machines, not runs, without being able to identify one or link it to another vendor',
  },
  $ip: { type: 'string', const: '127.0.0.1', what: 'always 127.0.0.1', why: 'stops PostHog from storing the sender\'s address' },
  $process_person_profile: { type: 'boolean', const: false, what: 'always false', why: 'stops PostHog from building person profiles' },
  product: { ...text, what: 'the vendor\'s product name', why: 'one receiver can serve several products' },
  product_version: { ...text, what: 'the product\'s version as given, or `unknown`', why: 'which releases are in use' },
  product_version_semver: { ...text, what: 'the product\'s version read as semver (`v1.44.0-12-gabc` gives `1.44.0-12-gabc`, `1.44` gives `1.44.0`), else `unknown`', why: 'sort and group versions' },
  schema_version: { type: 'integer', minimum: SCHEMA_VERSION, what: `the version of this list of properties (${SCHEMA_VERSION}); bumped when a property is added, removed or changes meaning`, why: 'dashboards can tell old payloads' },
  ...osRelease('host_os', 'the host\'s', 'which platforms to build and test for'),
  ...osRelease('container_os', 'the container\'s', 'which images are used'),
  system_kernel_name: { ...text, what: 'the kernel\'s name, e.g. `Linux`', why: 'kernel features to support' },
  system_kernel_version: { ...text, what: 'the kernel\'s release, e.g. `6.1.0-18-amd64`', why: 'kernel features to support' },
  system_architecture: { ...text, what: 'the running machine\'s architecture (`uname -m`), e.g. `x86_64`, `aarch64`', why: 'which builds to ship' },
  system_virtualization: { ...text, what: 'the VM technology in systemd-detect-virt\'s words (`kvm`, `amazon`, ...), `none` or `unknown`', why: 'where the product runs' },
  system_virt_detection: { ...text, what: 'the signal that decided system_virtualization (`dmi`, `cpuinfo`, `xen`, ..., `none`, `unknown`)', why: 'trust in the answer' },
  system_container: { ...text, what: 'the container technology in systemd-detect-virt\'s words (`docker`, `podman`, `lxc`, `wsl`, ...), `none` or `unknown`', why: 'where the product runs' },
  system_container_detection: { ...text, what: 'the signal that decided system_container (`dockerenv`, `cgroup`, `systemd`, ..., `none`, `unknown`)', why: 'trust in the answer' },
  host_is_k8s_node: { type: 'boolean', what: 'whether the host is a Kubernetes node', why: 'Kubernetes support' },
  ci: { type: 'boolean', what: 'whether the run is under CI', why: 'tell pipelines from real machines' },
  ci_name: { ...text, what: 'which CI (ci-info\'s vendor name, e.g. `GitHub Actions`), else `none`', why: 'tell pipelines from real machines' },
  queue_dropped: { ...count, what: 'how many queued events the full offline queue dropped since the last event (usually 0)', why: 'know what was lost' },
  suppressed_events: { ...count, what: 'how many events the crash-loop limit held back since the last event (usually 0)', why: 'see crash loops without being flooded by them' },
  exit_code: { type: 'integer', what: '`stop`: the daemon\'s exit code; `command-end`: the command\'s exit code', why: 'crash and failure rates' },
  fatal_process: { ...text, what: '`fatal`: the process that died (scrubbed free text)', why: 'fix crashes' },
  fatal_thread: { ...text, what: '`fatal`: the thread that died (scrubbed free text)', why: 'fix crashes' },
  fatal_function: { ...text, what: '`fatal`: the function it died in (scrubbed free text)', why: 'fix crashes' },
  fatal_file: { ...text, what: '`fatal`: the source file it died in (scrubbed free text)', why: 'fix crashes' },
  fatal_line: { ...count, what: '`fatal`: the source line it died at', why: 'fix crashes' },
  fatal_message: { ...text, what: '`fatal`: the fatal error\'s message (scrubbed free text)', why: 'fix crashes' },
  cloud_error_codes: { ...strings, what: '`cloud-connect-fail`: the error codes (scrubbed)', why: 'fix cloud connectivity' },
  cloud_message: { ...text, what: '`cloud-connect-fail`: the error\'s text (scrubbed)', why: 'fix cloud connectivity' },
  cloud_failed_dependencies: { ...strings, what: '`cloud-deps-fail`: the dependencies that failed (scrubbed)', why: 'fix builds' },
  cloud_unavailable_reason: { ...text, what: '`cloud-unavailable`: why the cloud is off (scrubbed)', why: 'know why the cloud is off' },
  install_result: { type: 'string', enum: ['success', 'failure'], what: '`install`: how the installation ended', why: 'fix installers' },
  install_code: { ...text, what: '`install`: the installer\'s code for it (scrubbed)', why: 'fix installers' },
  run_id: { ...uuid, what: 'a random UUID, new at each `start`, shared by the events of that run (left out when no `start` was seen)', why: 'count crashes per run without any host identifier' },
  run_uptime_s: { ...count, what: '`stop`, `fatal`: seconds since that run\'s `start`', why: 'uptime before a crash' },
  previous_run_end: { type: 'string', enum: ['stop', 'fatal', 'none', 'unknown'], what: '`start`: how the run before ended: `stop`, `fatal`, `none` (no earlier run on this host) or `unknown` (it ended without a `stop` or `fatal` being reported)', why: 'see runs that died without their hook' },
  command_name: { ...text, what: '`command-*`: the command as the CLI declares it (`converge`), never its argv; `unknown` for an action whose start is unknown', why: 'which commands are used' },
  command_flags: { ...strings, what: '`command-start`, `command-end`: the names of the options given on the command line, never their values', why: 'which options are used' },
  command_env_options: { ...strings, what: '`command-start`, `command-end`: the names of the options given through the environment, never their values', why: 'which options are used' },
  execution_id: { ...uuid, what: '`command-*`: the UUID `command-start` printed, tying an execution\'s events together', why: 'link a command\'s start, actions and end' },
  duration_ms: { ...count, what: '`command-end`: milliseconds since its `command-start` (left out when the start is unknown)', why: 'slow commands' },
  command_action: { ...text, what: '`command-action`: the ancillary action\'s name (`upload`, `report`)', why: 'which actions are used' },
} satisfies Record<string, PropertyDefinition>;

export type PropertyName = keyof typeof PROPERTIES;

/** What each event carries besides the properties every event carries: always, or where known. */
interface EventShape {
  always: readonly PropertyName[];
  whereKnown: readonly PropertyName[];
}

const RUN_EVENT: EventShape = { always: [], whereKnown: ['run_id'] };

export const EVENT_SHAPES: Record<EventName, EventShape> = {
  start: { always: ['run_id', 'previous_run_end'], whereKnown: [] },
  stop: { always: ['exit_code'], whereKnown: ['run_id', 'run_uptime_s'] },
  fatal: { always: ['fatal_process', 'fatal_thread'], whereKnown: ['fatal_function', 'fatal_file', 'fatal_line', 'fatal_message', 'run_id', 'run_uptime_s'] },
  'cloud-connect-fail': { always: ['cloud_error_codes'], whereKnown: ['cloud_message', ...RUN_EVENT.whereKnown] },
  'cloud-deps-fail': { always: ['cloud_failed_dependencies'], whereKnown: RUN_EVENT.whereKnown },
  'cloud-unavailable': { always: ['cloud_unavailable_reason'], whereKnown: RUN_EVENT.whereKnown },
  install: { always: ['install_result'], whereKnown: ['install_code'] },
  'command-start': { always: ['command_name', 'command_flags', 'command_env_options', 'execution_id'], whereKnown: [] },
  'command-end': { always: ['execution_id', 'exit_code'], whereKnown: ['command_name', 'command_flags', 'command_env_options', 'duration_ms'] },
  'command-action': { always: ['execution_id', 'command_action', 'command_name'], whereKnown: [] },
};

/** Carried by every event: the ones no event's shape names. */
export const COMMON_PROPERTIES: readonly PropertyName[] = (() => {
  const own = new Set(Object.values(EVENT_SHAPES).flatMap((shape) => [...shape.always, ...shape.whereKnown]));
  return (Object.keys(PROPERTIES) as PropertyName[]).filter((name) => !own.has(name));
})();

export function isPropertyName(name: string): name is PropertyName {
  return Object.hasOwn(PROPERTIES, name);
}

/** Hashed by scripts/build.ts: the built file knows it without node:crypto, which the --background caller needs for nothing else. */
declare const NOTICE_VERSION: string | undefined;

/**
 * The notice's version: a short hash of the property names, so a build that can send a property
 * the person was not told about tells again. A change of wording alone keeps it.
 */
export function noticeVersion(): string {
  return typeof NOTICE_VERSION === 'string' ? NOTICE_VERSION : noticeVersionOf(Object.keys(PROPERTIES));
}

export function noticeVersionOf(propertyNames: readonly string[]): string {
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  return createHash('sha256').update([...propertyNames].sort().join('\n')).digest('hex').slice(0, 12);
}

function propertySchema(definition: PropertyDefinition): Record<string, unknown> {
  const { what, why, ...type } = definition;
  return { ...type, description: `${what}. Why: ${why}.` };
}

/**
 * One JSON Schema (draft 2020-12) for the body of every single event this build sends (the
 * PostHog capture body): every property with its type and what it is and why it is collected,
 * nothing unlisted allowed; per event, what it must carry and what it may.
 */
export function captureSchema(product: string): Record<string, unknown> {
  const events = Object.keys(EVENT_SHAPES) as EventName[];
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:anonymous-statistics:${product}:capture-event:${SCHEMA_VERSION}`,
    title: `${product}: one anonymous-statistics event (PostHog capture body), schema_version ${SCHEMA_VERSION}`,
    description: 'Every property an event of this build can carry, what it is and why it is collected. Nothing else is ever sent.',
    type: 'object',
    required: ['api_key', 'event', 'uuid', 'timestamp', 'properties'],
    additionalProperties: false,
    properties: {
      api_key: { type: 'string', description: 'the project key of the receiver (not about this machine). Why: the receiver files the event under its project.' },
      event: { enum: events, description: 'the event\'s name: the command that reported it. Why: what happened.' },
      uuid: { type: 'string', pattern: UUID, description: 'a random id fixed when the event is created and kept through retries. Why: the receiver drops duplicates.' },
      timestamp: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$', description: 'when the event happened (ISO 8601, UTC). Why: when things happen.' },
      properties: {
        type: 'object',
        required: COMMON_PROPERTIES,
        additionalProperties: false,
        properties: Object.fromEntries(Object.entries(PROPERTIES).map(([name, definition]) => [name, propertySchema(definition)])),
      },
    },
    allOf: events.map((event) => ({
      if: { type: 'object', required: ['event'], properties: { event: { const: event } } },
      then: {
        type: 'object',
        properties: {
          properties: { type: 'object', required: EVENT_SHAPES[event].always, propertyNames: { enum: [...COMMON_PROPERTIES, ...EVENT_SHAPES[event].always, ...EVENT_SHAPES[event].whereKnown] } },
        },
      },
    })),
  };
}
