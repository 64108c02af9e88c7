import { HELP, parseInvocation, type Invocation } from './cli.ts';
import { disableTelemetry, enableTelemetry } from './consent.ts';
import { debug, PROGRAM, type Context } from './context.ts';
import { CommandError, UsageError } from './errors.ts';
import { buildEventProperties, type EventName } from './events.ts';
import { markerPath, optOuts, type OptOut } from './optout.ts';
import { captureUrl, resolveSettings, type OptionValues, type Settings } from './settings.ts';

/** Past the budget, the deadline ends the process this much later at the latest. */
const DEADLINE_GRACE_MS = 50;

/** Runs one command line; resolves with the exit code. Never throws. */
export async function main(argv: readonly string[], ctx: Context): Promise<number> {
  let invocation: Invocation | undefined;
  try {
    invocation = parseInvocation(argv);
    return await run(invocation, ctx);
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

async function run(invocation: Invocation, ctx: Context): Promise<number> {
  switch (invocation.kind) {
    case 'help':
      ctx.stdout(HELP);
      return 0;
    case 'version':
      ctx.stdout(`${ctx.toolVersion}\n`);
      return 0;
    case 'event':
      return reportEvent(invocation.command, invocation.values, ctx);
    case 'management':
      return MANAGEMENT[invocation.command](invocation.values, ctx);
  }
}

async function reportEvent(command: EventName, values: OptionValues, ctx: Context): Promise<number> {
  // Every check of the input comes first and is pure: a usage error sends and writes nothing.
  const settings = resolveSettings(values, ctx.env, ctx.vendor);
  const eventProperties = buildEventProperties(command, values);
  if (settings.background) throw new UsageError('--background is not available yet');
  const [optOut] = optOuts(settings.disableFlag, ctx.env, settings.configDir, true);
  if (optOut && !settings.dryRun) {
    debug(ctx, `not sending ${command}: ${optOut.detail}`);
    return 0;
  }
  ctx.armDeadline(settings.timeoutMs - ctx.elapsedMs() + DEADLINE_GRACE_MS);
  const { report } = await import('./report.ts');
  await report(command, eventProperties, settings, optOut, ctx);
  return 0;
}

type Management = (values: OptionValues, ctx: Context) => number;

const MANAGEMENT: Record<Extract<Invocation, { kind: 'management' }>['command'], Management> = {
  status(values, ctx) {
    const settings = resolveSettings(values, ctx.env, ctx.vendor);
    const active = optOuts(settings.disableFlag, ctx.env, settings.configDir);
    const report = statusReport(settings, active);
    ctx.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
    return 0;
  },
  disable(values, ctx) {
    const marker = disableTelemetry(resolveSettings(values, ctx.env, ctx.vendor).configDir);
    ctx.stdout(`telemetry disabled: ${marker} exists\n`);
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
  flush() {
    throw new UsageError('flush is not available yet');
  },
  history() {
    throw new UsageError('history is not available yet');
  },
};

function statusReport(settings: Settings, active: OptOut[]) {
  return {
    telemetry: active.length === 0 ? 'on' : 'off',
    opt_outs: active,
    marker_file: markerPath(settings.configDir),
    config_dir: settings.configDir,
    state_dir: settings.stateDir,
    endpoint: captureUrl(settings.endpoint).href,
    product: settings.product,
  };
}

function formatStatus(report: ReturnType<typeof statusReport>): string {
  const lines = [`telemetry: ${report.telemetry}`];
  for (const optOut of report.opt_outs) lines.push(`  off because ${optOut.detail}`);
  lines.push(`product: ${report.product}`, `endpoint: ${report.endpoint}`, `marker file: ${report.marker_file}`, `state dir: ${report.state_dir}`);
  return `${lines.join('\n')}\n`;
}
