import { commandName, type VendorConfig } from '../config/vendor.ts';
import { optOutAdvice } from '../consent/optout.ts';

/**
 * The whole --help text, kept next to the option tables it describes (parse.ts), in the
 * product's own names where the vendor gave them.
 */
export function helpText(vendor: VendorConfig): string {
  const name = commandName(vendor);
  return `Usage: ${name} <command> [options]

Reports one anonymous event (to PostHog, an OpenTelemetry collector or GA4), or manages consent.
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

Event commands for CLI tools (option names only, never their values):
  command-start --name NAME [--option NAME ...] [--env-option NAME ...]
                                          prints the execution id, whether or not telemetry is on;
                                          opted out, its action and end then send nothing
  command-end --execution-id ID --exit-code N
  command-action --execution-id ID --action NAME

Management commands:
  status [--json]     is telemetry on, which opt-out turned it off, and what would be sent
  disable             create the opt-out marker file in the config dir; delete queued events
  enable              remove the opt-out marker file (and leave local-only mode)
  local               record events in the history (and --log-file), never upload them;
                      deletes queued events. enable returns to on, disable turns it all off
  schema              the JSON Schema of every event this build can send: every property,
                      what it is and why it is collected
  flush               send events queued while offline
  history [--json]    what was sent, queued or dropped lately
  consent             the JSON document a web dashboard starts its telemetry with
                      ({"enabled":false} when opted out); writes and sends nothing

Options of every event command (a flag beats its variable, which beats the build default):
  --disable-telemetry        opt out (also DISABLE_TELEMETRY or DO_NOT_TRACK set to anything)
${vendorOptOuts(vendor)}  --config-dir DIR           where the opt-out marker is looked for   [TELEMETRY_CONFIG_DIR]
  --state-dir DIR            machine id and offline queue             [TELEMETRY_STATE_DIR]
  --endpoint URL             capture endpoint; https:, or http: for loopback only [TELEMETRY_ENDPOINT]
  --api-key KEY              PostHog project API key                  [TELEMETRY_API_KEY]
  --sink NAME                where events go: posthog, otlp (OTLP/HTTP JSON logs to
                             <endpoint>/v1/logs) or ga4 (Measurement Protocol) [TELEMETRY_SINK]
  --product-version V        the product's version                    [TELEMETRY_PRODUCT_VERSION]
  --timeout MS               time budget of the whole run, default 2000 [TELEMETRY_TIMEOUT_MS]
  --background               return at once; a detached child sends
  --show-notice              show the notice even without a terminal (installers); the run
                             that shows it sends nothing, its event goes with a later run
  --log-file PATH            append every payload sent, one JSON per line [TELEMETRY_LOG_FILE]
  --dry-run                  print the payload, send and write nothing
  --root DIR                 read system facts under DIR instead of /
  -h, --help                 this text
  --version                  the version of this tool

Examples:
  ${name} start --product-version 1.44.0
  ${name} stop --exit-code 1
  ${name} fatal --process mydaemon --thread main --file db.c --line 120
  ${name} install --result success --dry-run
  ID=$(${name} command-start --name converge --option dry-run); ${name} command-end --execution-id "$ID" --exit-code 0
  ${optOutAdvice(vendor).variable} ${name} start      # sends nothing
`;
}

/** The product's own opt-out flag and variables, as lines under --disable-telemetry. */
function vendorOptOuts(vendor: VendorConfig): string {
  const lines = vendor.optOutFlag === undefined ? [] : [`  ${vendor.optOutFlag.padEnd(26)} the same as --disable-telemetry`];
  for (const [variable, meaning] of Object.entries(vendor.optOutEnv ?? {})) {
    lines.push(`                             also ${variable} ${meaning === 'any' ? 'set to anything' : 'set to 0, false, off or no'}`);
  }
  return lines.map((line) => `${line}\n`).join('');
}
