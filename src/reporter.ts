import { existsSync } from 'node:fs';
import path from 'node:path';
import { debug, type Context } from './config/context.ts';
import { deliverNew } from './deliver/delivery.ts';
import { readText } from './collect/detect/fs.ts';
import { detectSystem } from './collect/detect/index.ts';
import { cut, type EventName, type EventProperties } from './cli/events.ts';
import { distinctId } from './collect/identity.ts';
import { record } from './store/ledger.ts';
import type { OptOut } from './consent/optout.ts';
import { SCHEMA_VERSION, toCapture, type CaptureEvent } from './collect/payload.ts';
import type { DashboardConsent } from './dashboard/consent.ts';
import { admitEvent, peekRate } from './store/rate-limit.ts';
import { createScrubber } from './collect/scrub.ts';
import { captureUrl, type Settings } from './config/settings.ts';
import { droppedCount, openSpool, setDroppedCount, spoolAt } from './store/spool.ts';
import { writeQuietly } from './store/state-dir.ts';
import { DEFAULT_EVENTS_PER_HOUR } from './config/vendor.ts';
import { productVersionProperties } from './collect/version.ts';

/**
 * The one door past consent: everything after the opt-out check (collect, build, then print for
 * a dry run, or store and deliver). run.ts imports it dynamically, so an opted-out run never
 * evaluates detection, crypto, HTTP or outbox code; test/boundary.test.ts keeps it that way.
 */
export { flushQueue } from './deliver/delivery.ts';
export { identitySource } from './collect/identity.ts';
export { formatLedger, readLedger } from './store/ledger.ts';
export { clearQueue, openSpool, queuedFiles, spoolAt } from './store/spool.ts';

const NOTICE_FILE = 'notice-shown';

/**
 * Free text with this host's names, users, paths and addresses replaced by placeholders, then
 * cut to length (after, so a cut cannot leave part of a secret the patterns no longer match).
 */
function scrubbed(properties: EventProperties, settings: Settings, ctx: Context): EventProperties {
  // start and stop carry no text: then there is nothing to scrub, and no name to look up
  // (os.userInfo() reads the passwd database on every call).
  if (!Object.values(properties).some((value) => typeof value === 'string' || Array.isArray(value))) return properties;
  const hostNames = [ctx.hostName(), readText(settings.root, 'etc/hostname')?.trim() ?? ''].flatMap((name) => [name, name.split('.')[0]]);
  const passwdUsers = (readText(settings.root, 'etc/passwd') ?? '')
    .split('\n')
    .map((line) => line.split(':'))
    .filter((fields) => Number(fields[2]) >= 1000 && Number(fields[2]) < 60000)
    .map((fields) => fields[0]);
  const userNames = [ctx.userName() ?? '', ctx.env.USER ?? '', ctx.env.LOGNAME ?? '', ctx.env.SUDO_USER ?? '', ...passwdUsers].filter((name) => name !== 'root');
  const scrubber = createScrubber(hostNames, userNames);
  const scrub = (text: string) => cut(scrubber(text));
  return Object.fromEntries(
    Object.entries(properties).map(([key, value]) => [key, typeof value === 'string' ? scrub(value) : Array.isArray(value) ? value.map(scrub) : value]),
  );
}

/**
 * What `consent` prints for a web dashboard: the id and names the backend's own events carry, so
 * both channels count one machine once. Computed, never written: a random id not stored yet is
 * not stored by this.
 */
export function dashboardConsent(settings: Settings, ctx: Context): DashboardConsent {
  return {
    enabled: true,
    distinct_id: distinctId({ root: settings.root, product: settings.product, stateDir: settings.stateDir, persist: false, uuid: ctx.uuid, uid: ctx.uid }),
    endpoint: captureUrl(settings.endpoint).href,
    api_key: settings.apiKey,
    product: settings.product,
    product_version: productVersionProperties(settings.productVersion).product_version,
    schema_version: SCHEMA_VERSION,
  };
}

/** The counts the next event will carry, read without resetting them (dry run, status). */
export function pendingCounts(stateDir: string): { queueDropped: number; suppressed: number } {
  return { queueDropped: droppedCount(spoolAt(stateDir)), suppressed: peekRate(stateDir) };
}

/** The payload for `command` as it would go out now (also what `status` shows). */
export function buildPayload(command: EventName, eventProperties: EventProperties, settings: Settings, ctx: Context, counts: { queueDropped: number; suppressed: number }): CaptureEvent {
  const ci = ctx.ci();
  return toCapture({
    apiKey: settings.apiKey,
    event: command,
    distinctId: distinctId({ root: settings.root, product: settings.product, stateDir: settings.stateDir, persist: !settings.dryRun, uuid: ctx.uuid, uid: ctx.uid }),
    product: settings.product,
    version: productVersionProperties(settings.productVersion),
    system: detectSystem({ root: settings.root, env: ctx.env, platform: ctx.platform() }),
    automation: { ci: ci.isCI, ci_name: ci.name ?? 'none', queue_dropped: counts.queueDropped, suppressed_events: counts.suppressed },
    eventProperties: scrubbed(eventProperties, settings, ctx),
    uuid: ctx.uuid(),
    timestamp: ctx.now(),
  });
}

export async function report(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context): Promise<void> {
  if (settings.dryRun) {
    ctx.stdout(`${JSON.stringify(buildPayload(command, eventProperties, settings, ctx, pendingCounts(settings.stateDir)))}\n`);
    ctx.stderr(optOut ? `dry run: telemetry is off (${optOut.detail}); nothing would be sent\n` : `dry run: nothing was sent to ${captureUrl(settings.endpoint).href}\n`);
    return;
  }
  const spool = openSpool(settings.stateDir, ctx.uid);
  const started = ctx.elapsedMs();
  let suppressed = 0;
  if (spool) {
    const decision = admitEvent(settings.stateDir, command, ctx.now().getTime(), ctx.vendor.eventsPerHour ?? DEFAULT_EVENTS_PER_HOUR);
    if (!decision.admitted) {
      const reason = `more than ${ctx.vendor.eventsPerHour ?? DEFAULT_EVENTS_PER_HOUR} ${command} events this hour (crash-loop limit)`;
      record(settings.stateDir, [{ time: ctx.now().toISOString(), event: command, uuid: '', outcome: 'suppressed', reason }]);
      debug(ctx, `not sending ${command}: ${reason}`);
      return;
    }
    suppressed = decision.suppressed;
  }
  // Events the full queue had to drop are counted on the next event created, then forgotten.
  const queueDropped = spool ? droppedCount(spool) : 0;
  if (spool && queueDropped > 0) setDroppedCount(spool, 0);
  const payload = buildPayload(command, eventProperties, settings, ctx, { queueDropped, suppressed });
  const outcome = await deliverNew({ settings, ctx, spool }, payload);
  // After the send, not before: the TTY check loads node:tty, whose node:net the send has loaded
  // by then (~3 ms saved on every run, most of which are not on a terminal anyway).
  if (spool) showFirstRunNotice(settings, ctx);
  if (spool) {
    record(settings.stateDir, [
      { time: payload.timestamp, event: command, uuid: payload.uuid, outcome: outcome.kind, reason: outcome.reason, status: outcome.status, duration_ms: Math.round(ctx.elapsedMs() - started) },
    ]);
  }
  debug(ctx, `${command} ${payload.uuid}: ${outcome.kind} (${outcome.reason})`);
}

/**
 * Once per host, the first time an event goes out and a person is watching stderr: what is
 * collected and how to say no. Never on stdout, never from a --background child.
 */
function showFirstRunNotice(settings: Settings, ctx: Context): void {
  const marker = path.join(settings.stateDir, NOTICE_FILE);
  if (ctx.backgroundChild || existsSync(marker) || !ctx.stderrIsTTY()) return;
  ctx.stderr(
    `${settings.product} sends anonymous usage statistics: OS, kernel, architecture, virtualization and\n` +
      `container type, product version, and start/stop/crash events. Never host names, users, paths or\n` +
      `addresses. Opt out with DO_NOT_TRACK=1, or: anonymous-statistics disable. See --dry-run for the data.\n`,
  );
  // Not writable: the notice may show again, which errs on the side of telling.
  writeQuietly(marker, `${ctx.now().toISOString()}\n`);
}
