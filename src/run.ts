import { HELP, parseInvocation, type Invocation } from './cli/parse.ts';
import { disableTelemetry, enableTelemetry } from './consent/marker.ts';
import { debug, PROGRAM, type Context } from './config/context.ts';
import { CommandError, UsageError } from './errors.ts';
import { buildEventProperties, type EventName } from './cli/events.ts';
import { markerPath, optOuts, type OptOut } from './consent/optout.ts';
import { captureUrl, resolveSettings, type OptionValues } from './config/settings.ts';

/** Past the budget, the deadline ends the process this much later at the latest. */
const DEADLINE_GRACE_MS = 50;

/** Runs one command line; resolves with the exit code. Never throws. */
export async function main(argv: readonly string[], ctx: Context): Promise<number> {
  let invocation: Invocation | undefined;
  try {
    invocation = parseInvocation(argv);
    return await run(invocation, argv, ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      ctx.stderr(`${PROGRAM}: ${error.message} (see ${PROGRAM} --help)\n`);
      return 2;
    }
    ctx.stderr(`${PROGRAM}: ${error instanceof CommandError ? error.message : describeUnexpected(error, ctx)}\n`);
    // A bug of ours must never fail the daemon or installer that reported an event.
    return invocation?.kind === 'event' ? 0 : 1;
  }
}

function describeUnexpected(error: unknown, ctx: Context): string {
  if (ctx.env.TELEMETRY_DEBUG) return (error as Error)?.stack ?? String(error);
  return `internal error: ${(error as Error)?.message ?? String(error)} (set TELEMETRY_DEBUG=1 for details)`;
}

async function run(invocation: Invocation, argv: readonly string[], ctx: Context): Promise<number> {
  switch (invocation.kind) {
    case 'help':
      ctx.stdout(HELP);
      return 0;
    case 'version':
      ctx.stdout(`${ctx.toolVersion}\n`);
      return 0;
    case 'event':
      return reportEvent(invocation.command, invocation.values, argv, ctx);
    case 'management':
      return MANAGEMENT[invocation.command](invocation.values, ctx);
  }
}

async function reportEvent(command: EventName, values: OptionValues, argv: readonly string[], ctx: Context): Promise<number> {
  // Every check of the input comes first and is pure: a usage error sends and writes nothing.
  const settings = resolveSettings(values, ctx.env, ctx.vendor);
  const eventProperties = buildEventProperties(command, values);
  const [optOut] = optOuts(settings.disableFlag, ctx.env, settings.configDir, true);
  if (optOut && !settings.dryRun) {
    debug(ctx, `not sending ${command}: ${optOut.detail}`);
    return 0;
  }
  if (settings.background && !settings.dryRun) {
    // The same command line without --background, in a detached child: the caller returns now.
    ctx.spawnDetached(argv.filter((arg) => arg !== '--background'));
    return 0;
  }
  ctx.armDeadline(settings.timeoutMs - ctx.elapsedMs() + DEADLINE_GRACE_MS);
  const { report } = await import('./reporter.ts');
  await report(command, eventProperties, settings, optOut, ctx);
  return 0;
}

type Management = (values: OptionValues, ctx: Context) => number | Promise<number>;

const MANAGEMENT: Record<Extract<Invocation, { kind: 'management' }>['command'], Management> = {
  async status(values, ctx) {
    const settings = resolveSettings(values, ctx.env, ctx.vendor);
    const active = optOuts(settings.disableFlag, ctx.env, settings.configDir);
    const { queuedFiles, spoolAt, buildPayload, identitySource, pendingCounts } = await import('./reporter.ts');
    // What a `start` would carry right now: built as a dry run builds it, nothing written.
    const { properties } = buildPayload('start', {}, { ...settings, dryRun: true }, ctx, pendingCounts(settings.stateDir));
    const report = {
      telemetry: active.length === 0 ? 'on' : 'off',
      enabled: active.length === 0,
      opt_outs: active,
      marker_file: markerPath(settings.configDir),
      endpoint: captureUrl(settings.endpoint).href,
      machine_id: identitySource(settings.root, settings.stateDir),
      state_dir: settings.stateDir,
      queued_events: queuedFiles(spoolAt(settings.stateDir)).length,
      log_file: settings.logFile ?? null,
      product: settings.product,
      properties,
    };
    ctx.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
    return 0;
  },
  async disable(values, ctx) {
    const settings = resolveSettings(values, ctx.env, ctx.vendor);
    const marker = disableTelemetry(settings.configDir);
    // Consent withdrawn covers what was collected but not yet sent.
    const { openSpool, clearQueue } = await import('./reporter.ts');
    const spool = openSpool(settings.stateDir, ctx.uid);
    const cleared = spool ? clearQueue(spool) : 0;
    ctx.stdout(`telemetry disabled: ${marker} exists${cleared > 0 ? `; deleted ${cleared} queued events` : ''}\n`);
    return 0;
  },
  enable(values, ctx) {
    const settings = resolveSettings(values, ctx.env, ctx.vendor);
    const marker = enableTelemetry(settings.configDir);
    const remaining = optOuts(false, ctx.env, settings.configDir);
    ctx.stdout(`removed ${marker}\n`);
    if (remaining.length > 0) ctx.stdout(`telemetry stays off: ${remaining.map((o) => o.detail).join('; ')}\n`);
    return 0;
  },
  async flush(values, ctx) {
    const settings = resolveSettings(values, ctx.env, ctx.vendor);
    const [optOut] = optOuts(settings.disableFlag, ctx.env, settings.configDir, true);
    if (optOut) {
      ctx.stderr(`${PROGRAM}: telemetry is off (${optOut.detail}); nothing was sent\n`);
      return 0;
    }
    const { flushQueue, openSpool } = await import('./reporter.ts');
    const result = await flushQueue({ settings, ctx, spool: openSpool(settings.stateDir, ctx.uid) });
    if (result.locked) {
      ctx.stdout('another run is sending the queue right now\n');
      return 0;
    }
    const corrupt = result.corrupt > 0 ? `, ${result.corrupt} corrupt files set aside` : '';
    ctx.stdout(`sent ${result.sent} queued events, dropped ${result.dropped} the receiver refused${corrupt}; ${result.remaining} still queued\n`);
    if (result.error !== undefined || result.remaining > 0) throw new CommandError(`${result.remaining} events still queued: ${result.error ?? 'the time budget ran out'}`);
    return 0;
  },
  async consent(values, ctx) {
    const settings = resolveSettings(values, ctx.env, ctx.vendor);
    // Before anything is read: an opted-out host computes no id for its dashboard either.
    if (optOuts(settings.disableFlag, ctx.env, settings.configDir, true).length > 0) {
      ctx.stdout(`${JSON.stringify({ enabled: false })}\n`);
      return 0;
    }
    const { dashboardConsent } = await import('./reporter.ts');
    ctx.stdout(`${JSON.stringify(dashboardConsent(settings, ctx))}\n`);
    return 0;
  },
  async history(values, ctx) {
    const settings = resolveSettings(values, ctx.env, ctx.vendor);
    const { readLedger, formatLedger } = await import('./reporter.ts');
    const entries = readLedger(settings.stateDir);
    ctx.stdout(values.json ? `${JSON.stringify(entries, null, 2)}\n` : formatLedger(entries));
    return 0;
  },
};

interface StatusReport {
  telemetry: string;
  enabled: boolean;
  opt_outs: OptOut[];
  marker_file: string;
  endpoint: string;
  machine_id: string;
  state_dir: string;
  queued_events: number;
  log_file: string | null;
  product: string;
  properties: Record<string, unknown>;
}

function formatStatus(report: StatusReport): string {
  const lines = [`telemetry: ${report.telemetry}`];
  for (const optOut of report.opt_outs) lines.push(`  off because ${optOut.detail}`);
  if (report.opt_outs.length === 0) lines.push(`  to turn it off: DO_NOT_TRACK=1, --disable-telemetry, or \`${PROGRAM} disable\` (creates ${report.marker_file})`);
  lines.push(
    `product: ${report.product}`,
    `endpoint: ${report.endpoint}`,
    `machine id: ${report.machine_id}`,
    `state dir: ${report.state_dir} (${report.queued_events} events queued)`,
    `log file: ${report.log_file ?? 'none (--log-file or TELEMETRY_LOG_FILE to keep one)'}`,
    `${report.telemetry === 'on' ? 'an event sends now' : 'an event would send, if telemetry were on'} these properties (plus its own):`,
    ...Object.entries(report.properties).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`),
  );
  return `${lines.join('\n')}\n`;
}
