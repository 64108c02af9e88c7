import type { Context } from './context.ts';
import { debug } from './context.ts';
import { deliverNew } from './delivery.ts';
import { detectSystem } from './detect/index.ts';
import type { EventName, EventProperties } from './events.ts';
import { distinctId } from './identity.ts';
import type { OptOut } from './optout.ts';
import { toCapture } from './payload.ts';
import { captureUrl, type Settings } from './settings.ts';
import { droppedCount, openSpool, setDroppedCount, spoolAt } from './spool.ts';
import { productVersionProperties } from './version.ts';

/**
 * Everything after the opt-out check: collect, build, then print (dry run) or deliver. Loaded
 * only when needed (run.ts imports it dynamically), so an opted-out run never evaluates
 * detection, crypto or HTTP code.
 */
export async function report(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context): Promise<void> {
  const spool = settings.dryRun ? undefined : openSpool(settings.stateDir, ctx.uid);
  // Events the full queue had to drop are counted on the next event created, then forgotten
  // (a dry run shows the count and leaves it).
  const queueDropped = droppedCount(spool ?? spoolAt(settings.stateDir));
  if (spool && queueDropped > 0) setDroppedCount(spool, 0);
  const payload = toCapture({
    apiKey: settings.apiKey,
    event: command,
    distinctId: distinctId({ root: settings.root, product: settings.product, stateDir: settings.stateDir, persist: !settings.dryRun, uuid: ctx.uuid, uid: ctx.uid }),
    product: settings.product,
    version: productVersionProperties(settings.productVersion),
    system: detectSystem({ root: settings.root, env: ctx.env, platform: ctx.platform() }),
    eventProperties,
    queueDropped,
    uuid: ctx.uuid(),
    timestamp: ctx.now(),
  });
  if (settings.dryRun) {
    ctx.stdout(`${JSON.stringify(payload)}\n`);
    ctx.stderr(optOut ? `dry run: telemetry is off (${optOut.detail}); nothing would be sent\n` : `dry run: nothing was sent to ${captureUrl(settings.endpoint).href}\n`);
    return;
  }
  const outcome = await deliverNew({ settings, ctx, spool }, payload);
  debug(ctx, `${command} ${payload.uuid}: ${outcome.kind} (${outcome.reason})`);
}
