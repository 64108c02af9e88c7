import { helpText } from './cli/help.ts';
import { parseInvocation, type Invocation } from './cli/parse.ts';
import { isLocalOnly, localOnlyPath } from './consent/local.ts';
import { chooseLocalOnly, disableTelemetry, enableTelemetry } from './consent/marker.ts';
import type { Context } from './config/context.ts';
import { readInstallSettings } from './config/install.ts';
import { CommandError, UsageError } from './errors.ts';
import { buildEventProperties, type EventName } from './cli/events.ts';
import { executionId, executionOptOut } from './consent/execution.ts';
import { markerPath, optOutAdvice, optOuts, type OptOut, type OptOutAdvice } from './consent/optout.ts';
import { commandName } from './config/vendor.ts';
import { givenOptOutFlag, resolveSettings, type OptionValues, type Settings } from './config/settings.ts';

/** Past the budget, the deadline ends the process this much later at the latest. */
const DEADLINE_GRACE_MS = 50;

/** Runs one command line; resolves with the exit code. Never throws. */
export async function main(argv: readonly string[], ctx: Context): Promise<number> {
  let invocation: Invocation | undefined;
  const command = commandName(ctx.vendor);
  try {
    invocation = parseInvocation(argv, ctx.vendor.optOutFlag);
    return await run(invocation, argv, ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      ctx.stderr(`${command}: ${oneLine(error.message)} (see ${command} --help)\n`);
      return 2;
    }
    ctx.stderr(`${command}: ${error instanceof CommandError ? oneLine(error.message) : describeUnexpected(error, ctx)}\n`);
    // A bug of ours must never fail the daemon or installer that reported an event.
    return invocation?.kind === 'event' ? 0 : 1;
  }
}

/**
 * A message that may quote what a person typed, on one line and inert on a terminal: control
 * characters (C0, DEL, C1) and line separators are shown escaped, never sent as they are.
 */
function oneLine(message: string): string {
  return message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function describeUnexpected(error: unknown, ctx: Context): string {
  if (ctx.env.TELEMETRY_DEBUG) return (error as Error)?.stack ?? String(error);
  return `internal error: ${(error as Error)?.message ?? String(error)} (set TELEMETRY_DEBUG=1 for details)`;
}

async function run(invocation: Invocation, argv: readonly string[], ctx: Context): Promise<number> {
  switch (invocation.kind) {
    case 'help':
      ctx.stdout(helpText(ctx.vendor));
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

/**
 * `quietWhenOptedOut`: where the flag, a variable or the execution id already opts out, not even
 * the installer's settings file is read (an opted-out event command reads nothing at all).
 * Commands that report on the settings (status, consent, ...) always read it.
 */
function settingsOf(values: OptionValues, ctx: Context, quietWhenOptedOut = false): Settings {
  const flagOrVariable = { disableFlag: givenOptOutFlag(values, ctx.vendor), optOutEnv: ctx.vendor.optOutEnv ?? {}, configDir: '' };
  const optedOut = executionOptOut(values['execution-id']) !== undefined || optOuts(flagOrVariable, ctx.env, true, false).length > 0;
  return resolveSettings(values, ctx.env, ctx.vendor, quietWhenOptedOut && optedOut ? {} : readInstallSettings(ctx.scriptPath));
}

function activeOptOuts(settings: Settings, ctx: Context, first = false): OptOut[] {
  return optOuts(settings, ctx.env, first);
}

async function reportEvent(command: EventName, values: OptionValues, argv: readonly string[], ctx: Context): Promise<number> {
  // Every check of the input comes first and is pure: a usage error sends and writes nothing.
  const settings = settingsOf(values, ctx, !values['dry-run']);
  const eventProperties = buildEventProperties(command, values);
  // Checked before the marker, so an execution opted out at its start touches no file at all.
  const optOut = executionOptOut(values['execution-id']) ?? activeOptOuts(settings, ctx, true)[0];
  // Armed before anything is printed: a stdout pipe nobody reads cannot hold the run past it.
  ctx.armDeadline(settings.timeoutMs - ctx.elapsedMs() + DEADLINE_GRACE_MS);
  if (command === 'command-start') {
    // Printed whether or not telemetry is on, so a CLI needs no branch: ID=$(... command-start ...).
    eventProperties.execution_id = executionId(ctx.uuid(), optOut !== undefined);
    if (!settings.dryRun) ctx.stdout(`${eventProperties.execution_id}\n`);
  }
  if (optOut && !settings.dryRun) {
    ctx.debug(`not sending ${command}: ${optOut.detail}`);
    return 0;
  }
  if (settings.exampleKeyProblem && !settings.dryRun) {
    ctx.stderr(`${commandName(ctx.vendor)}: ${settings.exampleKeyProblem}\n`);
    return 0;
  }
  // Known before anything else is read: a local-only run opens no socket and starts no sender.
  const local = !optOut && isLocalOnly(settings.configDir);
  if (local && ctx.backgroundChild) return 0;
  const door = await import('../door.ts');
  if (ctx.backgroundChild) await door.sendWaiting(settings, ctx);
  // The detached child runs the same command line (as a child it only sends what waits): taking
  // --background out could take out a value that happens to read so.
  else await door.report(command, eventProperties, settings, optOut, ctx, argv, local);
  return 0;
}

type Management = (values: OptionValues, ctx: Context) => number | Promise<number>;

const MANAGEMENT: Record<Extract<Invocation, { kind: 'management' }>['command'], Management> = {
  async status(values, ctx) {
    const settings = settingsOf(values, ctx);
    const active = activeOptOuts(settings, ctx);
    const { describeState } = await import('../door.ts');
    const report: StatusReport = {
      telemetry: active.length > 0 ? 'off' : isLocalOnly(settings.configDir) ? 'local' : 'on',
      enabled: active.length === 0,
      opt_outs: active,
      marker_file: markerPath(settings.configDir),
      local_only_file: localOnlyPath(settings.configDir),
      install_settings: settings.installFile ?? null,
      sending_refused: settings.exampleKeyProblem ?? null,
      log_file: settings.logFile ?? null,
      product: settings.product,
      ...describeState(settings, ctx),
    };
    ctx.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report, optOutAdvice(ctx.vendor)));
    return 0;
  },
  async disable(values, ctx) {
    const settings = settingsOf(values, ctx);
    const marker = disableTelemetry(settings.configDir);
    const { clearWaiting } = await import('../door.ts');
    const cleared = clearWaiting(settings, ctx, { forgetId: true });
    ctx.stdout(`telemetry disabled: ${marker} exists${cleared > 0 ? `; deleted ${count(cleared, 'queued event')}` : ''}\nthe id is forgotten: a later enable makes a new one\n`);
    return 0;
  },
  enable(values, ctx) {
    const settings = settingsOf(values, ctx);
    const { marker, removed, leftLocalOnly } = enableTelemetry(settings.configDir);
    const remaining = activeOptOuts({ ...settings, disableFlag: undefined }, ctx);
    const changes = [...(removed ? [`removed ${marker}`] : []), ...(leftLocalOnly ? [`removed ${localOnlyPath(settings.configDir)}: events are uploaded again`] : [])];
    if (remaining.length > 0) {
      ctx.stdout(`${changes.length > 0 ? changes.join('\n') : `there was no ${marker} to remove`}\ntelemetry stays off: ${remaining.map((o) => o.detail).join('; ')}\n`);
    } else {
      ctx.stdout(changes.length > 0 ? `${changes.join('\n')}\ntelemetry is on\n` : `telemetry was already on: there is no ${marker}\n`);
    }
    return 0;
  },
  async local(values, ctx) {
    const settings = settingsOf(values, ctx);
    const { marker, removedOptOut } = chooseLocalOnly(settings.configDir);
    // Local means nothing leaves from now on, what was queued before included.
    const { clearWaiting } = await import('../door.ts');
    const cleared = clearWaiting(settings, ctx, { forgetId: false });
    const remaining = activeOptOuts({ ...settings, disableFlag: undefined }, ctx);
    const lines = [
      ...(removedOptOut ? [`removed ${markerPath(settings.configDir)}`] : []),
      `${marker} exists${cleared > 0 ? `; deleted ${count(cleared, 'queued event')}` : ''}`,
      remaining.length > 0
        ? `telemetry stays off: ${remaining.map((o) => o.detail).join('; ')}`
        : `telemetry is local: events are recorded (\`${commandName(ctx.vendor)} history\`), never uploaded`,
    ];
    ctx.stdout(`${lines.join('\n')}\n`);
    return 0;
  },
  async schema(values, ctx) {
    const settings = settingsOf(values, ctx);
    const { schema } = await import('../door.ts');
    ctx.stdout(schema(settings));
    return 0;
  },
  async flush(values, ctx) {
    const settings = settingsOf(values, ctx, true);
    const [optOut] = activeOptOuts(settings, ctx, true);
    if (optOut) {
      ctx.stderr(`${commandName(ctx.vendor)}: telemetry is off (${optOut.detail}); nothing was sent\n`);
      return 0;
    }
    if (settings.exampleKeyProblem) throw new CommandError(settings.exampleKeyProblem);
    if (isLocalOnly(settings.configDir)) {
      ctx.stderr(`${commandName(ctx.vendor)}: telemetry is local-only (${localOnlyPath(settings.configDir)} exists); nothing is uploaded\n`);
      return 0;
    }
    ctx.armDeadline(settings.timeoutMs - ctx.elapsedMs() + DEADLINE_GRACE_MS);
    const { flush } = await import('../door.ts');
    const result = await flush(settings, ctx);
    const corrupt = result.corrupt > 0 ? `, ${count(result.corrupt, 'corrupt file')} set aside` : '';
    ctx.stdout(`sent ${count(result.sent, 'queued event')}, dropped ${result.dropped} the receiver refused${corrupt}; ${result.remaining} still queued\n`);
    if (result.error !== undefined) throw new CommandError(`${count(result.remaining, 'event')} still queued: ${result.error}`);
    return 0;
  },
  async consent(values, ctx) {
    const settings = settingsOf(values, ctx, true);
    // Before anything is read: an opted-out host computes no id for its dashboard either, and a
    // local-only one lets no browser upload what it would not.
    if (activeOptOuts(settings, ctx, true).length > 0 || isLocalOnly(settings.configDir)) {
      ctx.stdout(`${JSON.stringify({ enabled: false })}\n`);
      return 0;
    }
    // The dashboard module speaks PostHog's capture only; it would send with the key it is handed.
    if (settings.sink !== 'posthog') {
      ctx.stderr(`${commandName(ctx.vendor)}: the dashboard module sends to PostHog only; this build's sink is ${settings.sink}\n`);
      ctx.stdout(`${JSON.stringify({ enabled: false })}\n`);
      return 0;
    }
    if (settings.exampleKeyProblem) {
      ctx.stderr(`${commandName(ctx.vendor)}: ${settings.exampleKeyProblem}\n`);
      ctx.stdout(`${JSON.stringify({ enabled: false })}\n`);
      return 0;
    }
    const { dashboardConsent } = await import('../door.ts');
    ctx.stdout(`${JSON.stringify(dashboardConsent(settings, ctx))}\n`);
    return 0;
  },
  async history(values, ctx) {
    const settings = settingsOf(values, ctx);
    const { history } = await import('../door.ts');
    ctx.stdout(history(settings, ctx, values.json === true));
    return 0;
  },
};

interface StatusReport {
  telemetry: 'on' | 'off' | 'local';
  enabled: boolean;
  opt_outs: OptOut[];
  marker_file: string;
  local_only_file: string;
  notice_version: string;
  notice_shown: boolean;
  notice_shown_at: string | null;
  notice_shown_version: string | null;
  notice_required: boolean;
  install_settings: string | null;
  sending_refused: string | null;
  endpoint: string;
  /** The receiver's failures in a row and when the next attempt may be made; null when it is not backing off. */
  receiver_backoff: { failures: number; next_attempt: string } | null;
  machine_id: string;
  state_dir: string | null;
  unusable_state_dirs: { dir: string; reason: string }[];
  queued_events: number;
  log_file: string | null;
  product: string;
  properties: Record<string, unknown>;
}

function formatStatus(report: StatusReport, advice: OptOutAdvice): string {
  const lines = [`telemetry: ${report.telemetry}`];
  for (const optOut of report.opt_outs) lines.push(`  off because ${optOut.detail}`);
  if (report.telemetry === 'local') lines.push(`  recorded in the history, never uploaded, because ${report.local_only_file} exists`);
  if (report.opt_outs.length === 0) lines.push(`  to turn it off: ${advice.variable}, ${advice.flag}, or \`${advice.command}\` (creates ${report.marker_file})`);
  lines.push(noticeLine(report));
  lines.push(`product: ${report.product}`, `endpoint: ${report.endpoint}`);
  if (report.sending_refused) lines.push(`  ${report.sending_refused}`);
  if (report.receiver_backoff) lines.push(`  the receiver failed ${count(report.receiver_backoff.failures, 'time')} in a row (see history); next attempt after ${report.receiver_backoff.next_attempt}`);
  lines.push(`machine id: ${report.machine_id}`);
  if (report.install_settings) lines.push(`installer's settings: ${report.install_settings}`);
  for (const unusable of report.unusable_state_dirs) lines.push(`state dir ${unusable.dir} is unusable: it ${unusable.reason}`);
  lines.push(
    report.state_dir === null ? 'state dir: none usable, so events are not sent (the crash-loop limit could not hold)' : `state dir: ${report.state_dir} (${count(report.queued_events, 'event')} queued)`,
    `log file: ${report.log_file ?? 'none (--log-file or TELEMETRY_LOG_FILE to keep one)'}`,
    `${report.telemetry === 'on' ? 'an event sends now' : 'an event would send, if telemetry were on'} these properties (plus its own):`,
    ...Object.entries(report.properties).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`),
  );
  return `${lines.join('\n')}\n`;
}

function noticeLine(report: StatusReport): string {
  if (report.notice_shown) return `notice: version ${report.notice_version} shown ${report.notice_shown_at}`;
  const before = report.notice_shown_at === null ? 'never shown on this host' : `version ${report.notice_shown_version} was shown ${report.notice_shown_at}, not this one`;
  const then = report.notice_required ? 'events wait for it' : 'the next run on a terminal or an installer shows it, and that run sends nothing';
  return `notice: version ${report.notice_version} ${before}; ${then}`;
}

/** `1 event`, `2 events`, `0 events`. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
