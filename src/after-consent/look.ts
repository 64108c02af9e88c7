import path from 'node:path';
import type { EventName, EventProperties } from '../before-consent/cli/events.ts';
import type { Context } from '../before-consent/config/context.ts';
import type { Settings } from '../before-consent/config/settings.ts';
import type { OptOut } from '../before-consent/consent/optout.ts';
import type { DashboardConsent } from '../shared/consent-document.ts';
import { captureUrl } from '../shared/urls.ts';
import { distinctId, identitySource } from './collect/identity.ts';
import { SCHEMA_VERSION, type CaptureEvent } from './collect/payload.ts';
import { captureSchema, noticeVersion } from './collect/properties.ts';
import { productVersionProperties } from './collect/version.ts';
import { sinkFor } from './deliver/sinks/index.ts';
import { buildPayload, capped, identityOf, type Identity } from './event.ts';
import { formatHistory, readHistory } from './store/history.ts';
import { unsentCount } from './store/outbox.ts';
import { countsOf, emptyState, linkEvent, nextAttempt, noticeShownFor, type State } from './store/state.ts';
import { readState, STATE_FILE } from './store/state-file.ts';
import { stateDirCandidates, type Candidate, type StateDir } from './store/state-dir.ts';
import { closeStore, peekStore } from './store/store.ts';

/**
 * What a person asked to see: the dry run, status, history, the schema, the dashboard's consent.
 * Everything here looks at the state dir a run would use without creating or writing anything.
 */

export function candidates(settings: Settings, ctx: Context): Candidate[] {
  return stateDirCandidates({ configured: settings.stateDir, product: settings.product, env: ctx.env, tmpdir: ctx.tmpdir(), uid: ctx.uid });
}

/** The state as a run would read it; as never written where there is no state dir yet. */
function stateAsIs(stateDir: StateDir | undefined): State {
  return stateDir ? readState(stateDir) : emptyState();
}

/** The payload `command` would carry now, from the state as it is; nothing is written. */
function preview(command: EventName, eventProperties: EventProperties, settings: Settings, ctx: Context, identity: Identity, stateDir: StateDir | undefined): CaptureEvent {
  const state: State = stateAsIs(stateDir);
  const linked = linkEvent(command, state, identity.timestamp.getTime(), eventProperties, ctx.uuid);
  return buildPayload(command, linked.properties, settings, ctx, countsOf(state), identity, identityOf(state, ctx));
}

/** What a run would see of the state dir, looked at without creating anything; closed after `look`. */
export function peeking<T>(settings: Settings, ctx: Context, look: (peeked: ReturnType<typeof peekStore>) => T): T {
  const peeked = peekStore(candidates(settings, ctx), ctx.uid);
  try {
    return look(peeked);
  } finally {
    closeStore(peeked.stateDir);
  }
}

export function printDryRun(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context, identity: Identity, local: boolean): void {
  const event = peeking(settings, ctx, ({ stateDir }) => preview(command, eventProperties, settings, ctx, identity, stateDir));
  // The exact body the sink would send for this event alone (PostHog: the capture event itself).
  const sink = sinkFor(settings, ctx);
  ctx.stdout(`${sink.request([{ event, text: JSON.stringify(event) }], { single: true, now: ctx.now() }).body.toString()}\n`);
  const refusal = sink.problem(event, ctx.now());
  if (refusal !== undefined) ctx.stderr(`dry run: ${sink.name} would not take this event (${refusal}); it would not be queued\n`);
  if (optOut) ctx.stderr(`dry run: telemetry is off (${optOut.detail}); nothing would be sent\n`);
  else if (local) ctx.stderr('dry run: telemetry is local-only; this would be recorded in the history, never uploaded\n');
  else ctx.stderr(`dry run: nothing was sent to ${sink.shownUrl.href}\n`);
}

/** The `schema` command's document. */
export function schema(settings: Settings): string {
  return `${JSON.stringify(captureSchema(settings.product), null, 2)}\n`;
}

export function history(settings: Settings, ctx: Context, json: boolean): string {
  const entries = peeking(settings, ctx, ({ stateDir }) => (stateDir ? readHistory(stateDir) : []));
  return json ? `${JSON.stringify(entries, null, 2)}\n` : formatHistory(entries);
}

/** The back-off delivery keeps for this run's endpoint, while it holds sending back. */
function receiverBackoff(state: State, settings: Settings, ctx: Context): { failures: number; next_attempt: string } | null {
  const now = ctx.now().getTime();
  const next = nextAttempt(state, settings.endpoint.href, now);
  if (next <= now) return null;
  return { failures: state.backoff[settings.endpoint.href]?.failures ?? 0, next_attempt: new Date(next).toISOString() };
}

/** What status reports of the state dir and of what a `start` would carry now; nothing is written. */
export function describeState(settings: Settings, ctx: Context) {
  return peeking(settings, ctx, ({ stateDir, outbox, refused }) => {
    const { properties } = preview('start', {}, settings, ctx, { uuid: ctx.uuid(), timestamp: ctx.now() }, stateDir);
    const state = stateAsIs(stateDir);
    const version = noticeVersion();
    return {
      notice_version: version,
      notice_shown: noticeShownFor(state, version),
      notice_shown_at: state.noticeShown ?? null,
      notice_shown_version: state.noticeVersion ?? null,
      notice_required: ctx.vendor.noticeRequired === true,
      endpoint: sinkFor(settings, ctx).shownUrl.href,
      receiver_backoff: receiverBackoff(state, settings, ctx),
      machine_id: identitySource(settings.root, path.join(stateDir?.shown ?? settings.stateDir, STATE_FILE)),
      state_dir: stateDir?.shown ?? null,
      unusable_state_dirs: refused,
      queued_events: outbox ? unsentCount(outbox) : 0,
      properties,
    };
  });
}

/**
 * What `consent` prints for a web dashboard: the id and names the backend's own events carry, so
 * both channels count one machine once. Computed, never written: a random id not yet kept is
 * not kept by this either.
 */
export function dashboardConsent(settings: Settings, ctx: Context): DashboardConsent {
  return {
    enabled: true,
    distinct_id: peeking(settings, ctx, ({ stateDir }) => distinctId(settings.root, settings.product, identityOf(stateAsIs(stateDir), ctx))),
    endpoint: captureUrl(settings.endpoint).href,
    api_key: settings.apiKey,
    product: settings.product,
    product_version: capped(productVersionProperties(settings.productVersion)).product_version,
    schema_version: SCHEMA_VERSION,
  };
}
