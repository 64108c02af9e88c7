#!/bin/sh
# Example installer for a daemon that ships anonymous-statistics. Vendors: copy it, set PRODUCT,
# and put your own install steps in install_files().
#
#   sh install.sh [--prefix DIR] [--disable-telemetry]
#
# TELEMETRY_CONFIG_DIR and TELEMETRY_STATE_DIR move those dirs; every other TELEMETRY_* variable
# (endpoint, API key, product version, timeout, debug) reaches node through the environment as is.

PRODUCT=example-daemon
MARKER=.opt-out-from-anonymous-statistics
# The built file and the hooks are found next to this script, wherever it is run from.
HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 1
SRC=${ANONYMOUS_STATISTICS_SRC:-$HERE/../dist/anonymous-statistics.js}

usage() {
  echo "usage: sh install.sh [--prefix DIR] [--disable-telemetry]" >&2
  exit 2
}

PREFIX=
OPT_OUT=
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --disable-telemetry) OPT_OUT=--disable-telemetry; shift ;;
    *) usage ;;
  esac
done
PREFIX=${PREFIX%/}  # "--prefix /" and the default both give /lib, /etc, /var/lib

# Same rule as the tool: any non-empty value opts out, "0" too (doubt resolves toward privacy).
[ -n "${DISABLE_TELEMETRY:-}" ] && OPT_OUT=DISABLE_TELEMETRY
[ -n "${DO_NOT_TRACK:-}" ] && OPT_OUT=DO_NOT_TRACK

LIB_DIR=$PREFIX/lib/$PRODUCT
CONFIG_DIR=${TELEMETRY_CONFIG_DIR:-$PREFIX/etc/$PRODUCT}
STATE_DIR=${TELEMETRY_STATE_DIR:-$PREFIX/var/lib/$PRODUCT}

# An && chain, not set -e: set -e would end the script at the first failure, unreported.
install_files() {
  mkdir -p "$LIB_DIR" "$CONFIG_DIR" &&
    # Copy then rename, so a service hook running during an upgrade never sees half a file.
    cp "$SRC" "$LIB_DIR/.anonymous-statistics.js.$$" &&
    chmod 0755 "$LIB_DIR/.anonymous-statistics.js.$$" &&
    mv -f "$LIB_DIR/.anonymous-statistics.js.$$" "$LIB_DIR/anonymous-statistics.js" &&
    # The systemd drop-in and SysV hook call these from $LIB_DIR.
    cp "$HERE/systemd/stop-exit-code.sh" "$HERE/sysv/anonymous-statistics-hook.sh" "$LIB_DIR/" &&
    chmod 0755 "$LIB_DIR/stop-exit-code.sh" "$LIB_DIR/anonymous-statistics-hook.sh" &&
    # The marker outlives this shell: the daemon's hooks run without DO_NOT_TRACK in their
    # environment, and must stay quiet too.
    if [ -n "$OPT_OUT" ]; then
      : >"$CONFIG_DIR/$MARKER" && echo "$PRODUCT: anonymous statistics disabled ($OPT_OUT): created $CONFIG_DIR/$MARKER"
    fi
}

report() {
  # Opted out: do not even start node.
  [ -z "$OPT_OUT" ] || return 0
  if ! command -v node >/dev/null 2>&1; then
    echo "$PRODUCT: node not found on PATH; the anonymous install report is skipped" >&2
    return 0
  fi
  result=success
  [ "$1" -eq 0 ] || result=failure
  # Report with the installed copy: the source may be a temporary dir removed right after us.
  js=$LIB_DIR/anonymous-statistics.js
  [ -f "$js" ] || js=$SRC
  [ -f "$js" ] || return 0
  # --background: the installer never waits on the network. </dev/null: under `curl ... | sh`
  # stdin is this script. stderr stays visible, so a misconfigured endpoint is noticed.
  node "$js" install --result "$result" --code "$1" --background \
    --config-dir "$CONFIG_DIR" --state-dir "$STATE_DIR" </dev/null >/dev/null || :
}

install_files
status=$?
[ "$status" -eq 0 ] || echo "$PRODUCT: installation failed (status $status)" >&2
report "$status"
# The installer's own status, whatever the report did.
exit "$status"
