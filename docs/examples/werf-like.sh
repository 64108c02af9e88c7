#!/bin/sh
# A werf-like CLI reporting each command's start and end (werf's CommandStarted / CommandExited).
#
#   werf-like.sh [--repo REPO] [--dry-run] converge|build|render [ARG...]
#
# Its telemetry is this repository's tool built as the flavour `{"product": "werf", "commandName":
# "werf", "optOutEnv": {"WERF_TELEMETRY": "0"}}` and installed with scripts/install.sh. The user
# opts out with WERF_TELEMETRY=0 (or DO_NOT_TRACK=1, or `werf disable`): the tool reads those
# itself, so this script passes it only the command's name and the NAMES of the options the user
# gave, never a value, a positional argument or its own options such as --dry-run.
set -eu

WERF_TELEMETRY_TOOL=${WERF_TELEMETRY_TOOL:-/usr/local/lib/werf/anonymous-statistics.js}
telemetry() { node "$WERF_TELEMETRY_TOOL" "$@" --background; }

options=
repo=${WERF_REPO:-}
dry_run=false
while [ $# -gt 0 ]; do
  case $1 in
    --repo) repo=${2:?--repo needs a value}; options="$options --option repo"; shift ;;
    --repo=*) repo=${1#--repo=}; options="$options --option repo" ;;
    --dry-run) dry_run=true; options="$options --option dry-run" ;;
    --) shift; break ;;
    -*) echo "werf-like: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
command=${1:-}
case $command in
  converge | build | render) shift ;;
  *) echo "usage: werf-like.sh [--repo REPO] [--dry-run] converge|build|render [ARG...]" >&2; exit 2 ;;
esac
env_options=
if [ -n "${WERF_REPO:-}" ]; then env_options="$env_options --env-option WERF_REPO"; fi

# $options and $env_options hold only names written above, so splitting them is safe.
# shellcheck disable=SC2086
id=$(telemetry command-start --name "$command" $options $env_options) || id=

# Stands for the command's real work; its exit status is what the end reports.
work() {
  if [ "$command" != render ] && [ -z "$repo" ]; then
    echo "werf-like: $command needs --repo or WERF_REPO" >&2
    return 1
  fi
  if [ "$dry_run" = true ]; then echo "werf-like: would $command $*"; else echo "werf-like: $command $*"; fi
}
status=0
work "$@" || status=$?

if [ -n "$id" ]; then telemetry command-end --execution-id "$id" --exit-code "$status" || true; fi
exit "$status"
