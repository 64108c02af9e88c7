#!/bin/sh
# Example installer for a daemon that ships anonymous-statistics. Vendors: copy it and put your
# own install steps in install_files(). The product name and the default config and state dirs
# are read from the built file's banner, so a vendor's build needs no edit here.
#
#   sh install.sh [--src FILE] [--prefix DIR] [--user NAME] [--disable-telemetry]
#
# --src is the built file to install: a vendor's own flavour (npm run build -- --vendor FILE
# --outfile FILE); the default is dist/anonymous-statistics.js next to this script's dir.
# A vendor's flavour also takes its own opt-out flag and variables, named in the banner.
# TELEMETRY_CONFIG_DIR and TELEMETRY_STATE_DIR move those dirs; every other TELEMETRY_* variable
# (endpoint, API key, product version, timeout, debug) reaches node through the environment as is.
# The dirs chosen here, and an opt-out, hold for every later run of the installed copy: they are
# written to anonymous-statistics.json beside it, and the marker into the config dir.

MARKER=.opt-out-from-anonymous-statistics
# The built file and the hooks are found next to this script, wherever it is run from.
HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 1
# Whatever umask root's shell has (077 is common on hardened hosts), every dir made here is
# 0755, so a service user can reach its state dir and the installed copy; the tool's own state
# dir is made 0700 by name below (and by the tool itself).
umask 022

usage_line() {
  echo "usage: sh install.sh [--src FILE] [--prefix DIR] [--user NAME] [--disable-telemetry${PRODUCT_OPT_OUT_FLAG:+ | $PRODUCT_OPT_OUT_FLAG}]"
}
# One line on stderr naming what is wrong, then exit 2: nothing is installed or sent.
bad_usage() {
  echo "install.sh: $1 ($(usage_line))" >&2
  exit 2
}

SRC=$HERE/../dist/anonymous-statistics.js
PREFIX=
SERVICE_USER=
OPT_OUT=
HELP=
# The only option not known here is the flavour's own opt-out flag, known once its banner is read.
OTHER=
while [ $# -gt 0 ]; do
  case $1 in
    --src | --prefix | --user) [ $# -ge 2 ] || bad_usage "$1 needs a value" ;;
  esac
  case $1 in
    --src) SRC=$2; shift 2 ;;
    --src=*) SRC=${1#--src=}; shift ;;
    --prefix) PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --user) SERVICE_USER=$2; shift 2 ;;
    --user=*) SERVICE_USER=${1#--user=}; shift ;;
    --disable-telemetry) OPT_OUT=--disable-telemetry; shift ;;
    -h | --help) HELP=1; shift ;;
    *)
      [ -z "$OTHER" ] || [ "$OTHER" = "$1" ] || bad_usage "unknown option $1"
      OTHER=$1
      shift
      ;;
  esac
done

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

if [ -n "$HELP" ]; then
  usage_line
  echo "installs $SRC${PRODUCT:+ ($PRODUCT)} under <prefix>/lib/<product>/; --user gives the service user its state dir"
  exit 0
fi
if ! [ -f "$SRC" ] || ! [ -r "$SRC" ]; then bad_usage "--src $SRC: no such readable file"; fi
case $PRODUCT in
  '' | */* | .*) bad_usage "--src $SRC has no usable '// product:' banner line; is it a built anonymous-statistics.js?" ;;
esac
for dir in "$DEFAULT_CONFIG_DIR" "$DEFAULT_STATE_DIR"; do
  case $dir in
    /?*) ;;
    *) bad_usage "--src $SRC has no absolute '// config-dir:' and '// state-dir:' banner lines" ;;
  esac
done
if [ -n "$OTHER" ]; then
  if [ -z "$PRODUCT_OPT_OUT_FLAG" ] || [ "$OTHER" != "$PRODUCT_OPT_OUT_FLAG" ]; then bad_usage "unknown option $OTHER"; fi
  OPT_OUT=$OTHER
fi
PREFIX=${PREFIX%/}  # "--prefix /" and the default both give /lib, /etc, /var/lib
case $SERVICE_USER in -*) bad_usage "--user $SERVICE_USER is not a user name" ;; esac

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
    # The dirs above the state dir are made here, 0755: left to the tool, running as root, they
    # would be its own (0700), and a service user could not reach the state dir below them.
    mkdir -p "$(dirname -- "$STATE_DIR")" &&
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
