#!/bin/sh
# Example installer for a daemon that ships anonymous-statistics. Vendors: copy it and put your
# own install steps in install_files(). The product name and the default config and state dirs
# are read from the built file's banner, so a vendor's build needs no edit here.
#
#   sh install.sh [--prefix DIR] [--user NAME] [--disable-telemetry]
#
# A vendor's flavour also takes its own opt-out flag and variables, named in the banner.
# TELEMETRY_CONFIG_DIR and TELEMETRY_STATE_DIR move those dirs; every other TELEMETRY_* variable
# (endpoint, API key, product version, timeout, debug) reaches node through the environment as is.
# The dirs chosen here, and an opt-out, hold for every later run of the installed copy: they are
# written to anonymous-statistics.json beside it, and the marker into the config dir.

MARKER=.opt-out-from-anonymous-statistics
# The built file and the hooks are found next to this script, wherever it is run from.
HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 1
SRC=${ANONYMOUS_STATISTICS_SRC:-$HERE/../dist/anonymous-statistics.js}

# The banner's "// <key>: <value>" lines, the file's first lines after the shebang (README
# "What an installer reads from the built file").
banner() {
  sed -n "s|^// $1: *||p;/^[^#/]/q" "$SRC" 2>/dev/null
}
PRODUCT=$(banner product)
DEFAULT_CONFIG_DIR=$(banner config-dir)
DEFAULT_STATE_DIR=$(banner state-dir)
# The vendor's own spelling of --disable-telemetry, and its opt-out variables, if it set any.
PRODUCT_OPT_OUT_FLAG=$(banner opt-out-flag)
PRODUCT_OPT_OUT_ENV=$(banner opt-out-env)
case $PRODUCT in
  '' | */* | .*) echo "install.sh: $SRC has no usable '// product:' banner line; is it a built anonymous-statistics.js?" >&2; exit 1 ;;
esac
for dir in "$DEFAULT_CONFIG_DIR" "$DEFAULT_STATE_DIR"; do
  case $dir in
    /?*) ;;
    *) echo "install.sh: $SRC has no absolute '// config-dir:' and '// state-dir:' banner lines" >&2; exit 1 ;;
  esac
done

usage() {
  echo "usage: sh install.sh [--prefix DIR] [--user NAME] [--disable-telemetry${PRODUCT_OPT_OUT_FLAG:+ | $PRODUCT_OPT_OUT_FLAG}]" >&2
  exit 2
}

PREFIX=
SERVICE_USER=
OPT_OUT=
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --user) [ $# -ge 2 ] || usage; SERVICE_USER=$2; shift 2 ;;
    --user=*) SERVICE_USER=${1#--user=}; shift ;;
    --disable-telemetry) OPT_OUT=--disable-telemetry; shift ;;
    *)
      if [ -z "$PRODUCT_OPT_OUT_FLAG" ] || [ "$1" != "$PRODUCT_OPT_OUT_FLAG" ]; then usage; fi
      OPT_OUT=$1
      shift
      ;;
  esac
done
PREFIX=${PREFIX%/}  # "--prefix /" and the default both give /lib, /etc, /var/lib
case $SERVICE_USER in -*) usage ;; esac

# Same rule as the tool: any non-empty value opts out, "0" too (doubt resolves toward privacy).
[ -n "${DISABLE_TELEMETRY:-}" ] && OPT_OUT=DISABLE_TELEMETRY
[ -n "${DO_NOT_TRACK:-}" ] && OPT_OUT=DO_NOT_TRACK
# The product's variables: "any" kind opts out when set to anything, "0" kind on 0/false/off/no.
for rule in $PRODUCT_OPT_OUT_ENV; do
  name=${rule%=*}
  case $name in '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
  eval "value=\${$name-}" # safe: a name of letters, digits and _ only (checked above)
  case ${rule#*=} in
    any) [ -n "$value" ] && OPT_OUT=$name ;;
    0) case $(printf '%s' "$value" | tr '[:upper:]' '[:lower:]' | sed 's/^[[:space:]]*//;s/[[:space:]]*$//') in
        0 | false | off | no) OPT_OUT=$name ;;
      esac ;;
  esac
done

if [ -n "$SERVICE_USER" ] && ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  echo "$PRODUCT: no such user: $SERVICE_USER" >&2
  exit 2
fi

absolute() {
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
  esac
}
LIB_DIR=$(absolute "$PREFIX/lib/$PRODUCT")
CONFIG_DIR=$(absolute "${TELEMETRY_CONFIG_DIR:-$PREFIX$DEFAULT_CONFIG_DIR}")
STATE_DIR=$(absolute "${TELEMETRY_STATE_DIR:-$PREFIX$DEFAULT_STATE_DIR}")
# The hook is given this path in double quotes, through sed: keep to characters neither reads.
case $LIB_DIR in
  *[!A-Za-z0-9/._+@:,=\ -]*) echo "$PRODUCT: the install dir $LIB_DIR may hold only letters, digits, spaces and / . _ + @ : , = -" >&2; exit 2 ;;
esac

# A JSON string: backslash and double quote escaped. A path with a control character (a newline)
# is refused rather than written half-escaped.
json_string() {
  case $1 in
    *[[:cntrl:]]*) return 1 ;;
  esac
  printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"
}

# Write $2 into file $1 by copy-then-rename, so a hook running during an upgrade never sees half a file.
install_atomically() {
  if cat >"$1.$$" && chmod "$2" "$1.$$" && mv -f "$1.$$" "$1"; then return 0; fi
  rm -f "$1.$$"
  return 1
}

# An && chain, not set -e: set -e would end the script at the first failure, unreported.
install_files() {
  config_json=$(json_string "$CONFIG_DIR") && state_json=$(json_string "$STATE_DIR") &&
    mkdir -p "$LIB_DIR" "$CONFIG_DIR" &&
    # The settings first, so the installed copy never runs with the build's dirs instead of ours.
    printf '{"configDir":%s,"stateDir":%s}\n' "$config_json" "$state_json" |
    install_atomically "$LIB_DIR/anonymous-statistics.json" 0644 &&
    install_atomically "$LIB_DIR/anonymous-statistics.js" 0755 <"$SRC" &&
    # The systemd drop-in and SysV hook call these from $LIB_DIR; the hook is told where it is.
    install_atomically "$LIB_DIR/stop-exit-code.sh" 0755 <"$HERE/systemd/stop-exit-code.sh" &&
    sed "s|^: \"\${ANONYMOUS_STATISTICS_JS:=.*}\"\$|: \"\${ANONYMOUS_STATISTICS_JS:=$LIB_DIR/anonymous-statistics.js}\"|" \
      "$HERE/sysv/anonymous-statistics-hook.sh" | install_atomically "$LIB_DIR/anonymous-statistics-hook.sh" 0755 &&
    # StateDirectory= gives a systemd unit's User= its dir under /var/lib; anywhere else (a
    # --prefix, a SysV service) the service user gets it here. The tool uses no dir it does not own.
    if [ -n "$SERVICE_USER" ]; then
      mkdir -p "$STATE_DIR" && chown -R "$SERVICE_USER" "$STATE_DIR" && chmod 0700 "$STATE_DIR"
    fi &&
    # The marker outlives this shell: the daemon's hooks run without DO_NOT_TRACK in their
    # environment, and must stay quiet too.
    if [ -n "$OPT_OUT" ]; then
      : >"$CONFIG_DIR/$MARKER" && echo "$PRODUCT: anonymous statistics disabled ($OPT_OUT): created $CONFIG_DIR/$MARKER"
    fi
}

report() {
  # Opted out: do not even start node.
  [ -z "$OPT_OUT" ] || return 0
  if ! node=$(command -v node); then
    echo "$PRODUCT: node not found on PATH; the anonymous install report is skipped" >&2
    return 0
  fi
  result=success
  [ "$1" -eq 0 ] || result=failure
  # Report with the installed copy: the source may be a temporary dir removed right after us.
  js=$LIB_DIR/anonymous-statistics.js
  [ -f "$js" ] || js=$SRC
  [ -f "$js" ] || return 0
  # The state dir is the service user's: report as that user, so what the report writes is
  # theirs too (a dir root does not own would not be used). su keeps the environment, resets PATH.
  set -- "$node" "$js" install --result "$result" --code "$1" --background --show-notice \
    --config-dir "$CONFIG_DIR" --state-dir "$STATE_DIR"
  if [ -n "$SERVICE_USER" ] && [ "$(id -u)" != "$(id -u "$SERVICE_USER")" ]; then
    # shellcheck disable=SC2016 # $0 and $@ are for the shell su starts
    set -- su -s /bin/sh -c 'exec "$0" "$@"' -- "$SERVICE_USER" "$@"
  fi
  # --background: the installer never waits on the network. --show-notice: the person installing
  # is told once what is collected, on stderr, which stays visible (a misconfigured endpoint is
  # noticed too). </dev/null: under `curl ... | sh` stdin is this script.
  "$@" </dev/null >/dev/null || :
}

install_files
status=$?
[ "$status" -eq 0 ] || echo "$PRODUCT: installation failed (status $status)" >&2
report "$status"
# The installer's own status, whatever the report did.
exit "$status"
