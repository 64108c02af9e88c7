import { appendFileSync } from 'node:fs';
import { debug, PROGRAM, type Context } from './context.ts';
import { detectSystem } from './detect/index.ts';
import type { EventName, EventProperties } from './events.ts';
import { distinctId } from './identity.ts';
import type { OptOut } from './optout.ts';
import { toCapture } from './payload.ts';
import { captureUrl, type Settings } from './settings.ts';
import { productVersionProperties } from './version.ts';

/**
 * Everything after the opt-out check: collect, build, then print (dry run) or send. Loaded only
 * when needed (run.ts imports it dynamically), so an opted-out run never evaluates detection,
 * crypto or HTTP code.
 */
export async function report(command: EventName, eventProperties: EventProperties, settings: Settings, optOut: OptOut | undefined, ctx: Context): Promise<void> {
  const payload = toCapture({
    apiKey: settings.apiKey,
    event: command,
    distinctId: distinctId({ root: settings.root, product: settings.product, stateDir: settings.stateDir, persist: !settings.dryRun, uuid: ctx.uuid }),
    product: settings.product,
    version: productVersionProperties(settings.productVersion),
    system: detectSystem({ root: settings.root, env: ctx.env, platform: ctx.platform() }),
    eventProperties,
    uuid: ctx.uuid(),
    timestamp: ctx.now(),
  });
  const body = JSON.stringify(payload);
  const url = captureUrl(settings.endpoint);
  if (settings.dryRun) {
    ctx.stdout(`${body}\n`);
    ctx.stderr(optOut ? `dry run: telemetry is off (${optOut.detail}); nothing would be sent\n` : `dry run: nothing was sent to ${url.href}\n`);
    return;
  }
  const { postJson } = await import('./transport.ts');
  try {
    await postJson({ url, body, budgetMs: Math.floor(settings.timeoutMs - ctx.elapsedMs()), userAgent: `${PROGRAM}/${ctx.toolVersion}` });
    appendLog(settings.logFile, body);
    debug(ctx, `sent ${command} ${payload.uuid}`);
  } catch (error) {
    debug(ctx, `could not send ${command} ${payload.uuid}: ${(error as Error).name}: ${(error as Error).message}`);
  }
}

function appendLog(logFile: string | undefined, body: string): void {
  if (logFile === undefined) return;
  try {
    appendFileSync(logFile, `${body}\n`, { mode: 0o600 });
  } catch {
    // The log is for the user's eyes; a full or read-only disk must not cost the event.
  }
}
