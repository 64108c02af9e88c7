#!/bin/sh
# A Lumogon-like tool reporting each command run "with arguments stripped", plus its upload.
#
#   lumogon-like.sh [--disable-analytics] [--format text|json] [--keep-harvesters] scan|report [CONTAINER...]
#
# Its telemetry is this repository's tool built as the flavour `{"product": "lumogon",
# "optOutEnv": {"LUMOGON_DISABLE_ANALYTICS": "any"}, "optOutFlag": "--disable-analytics"}` and
# installed with scripts/install.sh. The user opts out with --disable-analytics, with
# LUMOGON_DISABLE_ANALYTICS=1 (or DO_NOT_TRACK=1) or with `lumogon-telemetry disable`. This
# script passes the telemetry tool only the command's name, the NAMES of the options the user
# gave and, when given, --disable-analytics; never "$@", whose values and positional arguments
# are the user's (and whose options the telemetry tool would refuse).
set -eu

LUMOGON_TELEMETRY_TOOL=${LUMOGON_TELEMETRY_TOOL:-/usr/local/lib/lumogon/anonymous-statistics.js}
telemetry() { node "$LUMOGON_TELEMETRY_TOOL" "$@" --background; }

opt_out=
options=
format=text
while [ $# -gt 0 ]; do
  case $1 in
    --disable-analytics) opt_out=$1 ;;
    --format) format=${2:?--format needs a value}; options="$options --option format"; shift ;;
    --format=*) format=${1#--format=}; options="$options --option format" ;;
    --keep-harvesters) options="$options --option keep-harvesters" ;;
    --) shift; break ;;
    -*) echo "lumogon-like: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
command=${1:-}
case $command in
  scan | report) shift ;;
  *) echo "usage: lumogon-like.sh [--disable-analytics] [--format text|json] [--keep-harvesters] scan|report [CONTAINER...]" >&2; exit 2 ;;
esac

# $options holds only names written above and $opt_out only --disable-analytics: safe to split.
# An opted-out start prints an id all the same, and its action and end then send nothing.
# shellcheck disable=SC2086
id=$(telemetry command-start --name "$command" $options $opt_out) || id=

# Stands for the command's real work; its exit status is what the end reports.
work() {
  if [ "$format" = json ]; then
    printf '{"command": "%s", "containers": %s}\n' "$command" "$#"
  else
    echo "lumogon-like: $command of ${*:-every container}"
  fi
}
status=0
work "$@" || status=$?

if [ -n "$id" ]; then
  if [ "$command" = report ]; then telemetry command-action --execution-id "$id" --action upload || true; fi
  telemetry command-end --execution-id "$id" --exit-code "$status" || true
fi
exit "$status"
