import type { EventProperties } from '../before-consent/cli/events.ts';
import type { Context } from '../before-consent/config/context.ts';
import type { Settings } from '../before-consent/config/settings.ts';
import { createScrubber, cut, scrubSystemValue } from '../shared/scrub.ts';
import { readText } from './collect/detect/fs.ts';
import { detectSystem } from './collect/detect/index.ts';
import { distinctId, type IdentitySources } from './collect/identity.ts';
import { toCapture, type CaptureEvent } from './collect/payload.ts';
import { productVersionProperties } from './collect/version.ts';
import { newSalt, type Counts, type State } from './store/state.ts';
import type { OutboxEvent } from './store/outbox.ts';

/**
 * An event built whole: its own properties scrubbed, the system detected, the ids it carries.
 * What the door sends, a dry run prints and status shows are all built here.
 */

/** Values this tool made (ids, how a run ended): no one's text, and the scrubber would take the ids for someone's. */
const OWN_VALUES = new Set(['execution_id', 'run_id', 'previous_run_end']);
/** A passwd file with more users than this is not a list of people to look for in free text. */
const MAX_SCRUBBED_USERS = 256;

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
export function capped<T extends Record<string, unknown>>(properties: T): T {
  return Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, typeof value === 'string' ? (PLAIN_VERSION.test(value) ? cut(value) : scrubSystemValue(value)) : value])) as T;
}

export interface Identity {
  uuid: string;
  timestamp: Date;
}

/**
 * What distinct_id is made from, as `state` keeps it (every admitted event makes sure it does).
 * Where it keeps none yet, a dry run or `consent` shows an id made anew that no event will carry.
 */
export function identityOf(state: State, ctx: Context): IdentitySources {
  return {
    salt: () => state.idSalt ?? newSalt(ctx.uuid),
    randomId: () => state.distinctId ?? ctx.uuid(),
  };
}

/** The system as detected under `root` now: one run finishing many events detects it once. */
export type SystemOf = (root: string) => ReturnType<typeof detectSystem>;

export function systemOf(ctx: Context): SystemOf {
  const detected = new Map<string, ReturnType<typeof detectSystem>>();
  return (root) => {
    if (!detected.has(root)) detected.set(root, detectSystem({ root, env: ctx.env, platform: ctx.platform() }));
    return detected.get(root)!;
  };
}

export function buildPayload(command: string, eventProperties: EventProperties, settings: Settings, ctx: Context, counts: Counts, identity: Identity, ids: IdentitySources, system = systemOf(ctx)): CaptureEvent {
  const ci = ctx.ci();
  return toCapture({
    apiKey: settings.apiKey,
    event: command,
    distinctId: distinctId(settings.root, settings.product, ids),
    product: settings.product,
    version: capped(productVersionProperties(settings.productVersion)),
    system: capped(system(settings.root)),
    automation: { ci: ci.isCI, ci_name: ci.name ?? 'none', ...counts },
    eventProperties: scrubbed(eventProperties, settings, ctx),
    uuid: identity.uuid,
    timestamp: identity.timestamp,
  });
}


/**
 * An event stored unfinished (--background, or held for the notice), finished with what is
 * collected now; it keeps what it was created with: its key, uuid, time, product version, root
 * and counts.
 */
export function finishEvent({ api_key, collect, event, properties, uuid, timestamp }: OutboxEvent, settings: Settings, ctx: Context, ids: IdentitySources, system: SystemOf): OutboxEvent {
  const counts = { queue_dropped: Number(properties.queue_dropped) || 0, suppressed_events: Number(properties.suppressed_events) || 0 };
  const own = Object.fromEntries(Object.entries(properties).filter(([key]) => key !== 'queue_dropped' && key !== 'suppressed_events')) as EventProperties;
  const eventSettings = { ...settings, apiKey: api_key, productVersion: collect?.product_version, root: collect?.root ?? settings.root };
  return buildPayload(event, own, eventSettings, ctx, counts, { uuid, timestamp: new Date(timestamp) }, ids, system);
}
