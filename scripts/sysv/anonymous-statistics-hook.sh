#!/bin/sh
# anonymous-statistics hook for SysV-init and OpenRC scripts. Call it:
#
#   /lib/example-daemon/anonymous-statistics-hook.sh start
#   /lib/example-daemon/anonymous-statistics-hook.sh stop [EXIT_CODE]
#
# or source it and call the function (OpenRC: from start_post / stop_post):
#
#   . /lib/example-daemon/anonymous-statistics-hook.sh
#   anonymous_statistics start
#   anonymous_statistics stop "$status"
#
# It always returns 0 and never waits on the network (--background: the event is on disk before
# the detached sender starts), so an init script running under set -e cannot be stopped or slowed
# by it. Opt-outs and dirs are the tool's business: it sees the same environment, and the
# anonymous-statistics.json and marker file the installer wrote. install.sh sets the path below to
# its installed copy; ANONYMOUS_STATISTICS_JS moves it.

: "${ANONYMOUS_STATISTICS_JS:=/lib/example-daemon/anonymous-statistics.js}"

anonymous_statistics() {
  command -v node >/dev/null 2>&1 || return 0
  case ${1:-} in
    start) set -- start ;;
    # A daemon's exit status is a number; anything else still means it did not stop cleanly.
    stop) case ${2:-0} in
        *[!0-9]*) set -- stop --exit-code 1 ;;
        *) set -- stop --exit-code "${2:-0}" ;;
      esac ;;
    *) return 0 ;;
  esac
  # </dev/null: never read the init script's input. stderr stays, for a broken configuration.
  node "$ANONYMOUS_STATISTICS_JS" "$@" --background </dev/null >/dev/null || :
  return 0
}

# Run only when executed: when sourced, $0 is the init script and its $1 is not ours.
# (So keep this file's name, or change it here too.)
case ${0##*/} in
  anonymous-statistics-hook.sh) anonymous_statistics "$@" ;;
esac
