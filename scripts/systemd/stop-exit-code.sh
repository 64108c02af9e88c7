#!/bin/sh
# Runs "$@ --exit-code N", N being the daemon's exit code as systemd reported it to ExecStopPost=
# ($SERVICE_RESULT, $EXIT_CODE, $EXIT_STATUS; systemd 232 and newer). Used by
# anonymous-statistics.conf, whose command lines must stay free of "$" (see there).
#
#   SERVICE_RESULT=success             -> 0 (systemd counts it a clean stop, SuccessExitStatus= included)
#   EXIT_STATUS=<number>, not 0        -> that number
#   EXIT_STATUS=<signal name>          -> 128 + its number, as a shell reports a killed child
#   none of these variables set        -> 0 (older systemd, or run by hand: nothing says it failed)
#   anything else                      -> 1

signal_number() {
  # Numbers shared by every Linux architecture, plus BUS/USR1/USR2/SYS as on x86 and ARM.
  case ${1#SIG} in
    HUP) echo 1 ;; INT) echo 2 ;; QUIT) echo 3 ;; ILL) echo 4 ;; TRAP) echo 5 ;;
    ABRT | IOT) echo 6 ;; BUS) echo 7 ;; FPE) echo 8 ;; KILL) echo 9 ;; USR1) echo 10 ;;
    SEGV) echo 11 ;; USR2) echo 12 ;; PIPE) echo 13 ;; ALRM) echo 14 ;; TERM) echo 15 ;;
    SYS) echo 31 ;;
    *) return 1 ;;
  esac
}

status=${EXIT_STATUS:-}
if [ "${SERVICE_RESULT:-}" = success ] || [ -z "${SERVICE_RESULT:-}${status}" ]; then
  code=0
else
  case $status in
    '' | 0 | *[!0-9]*) code=1 ;;
    *) code=$status ;;
  esac
  if number=$(signal_number "$status"); then code=$((128 + number)); fi
fi

exec "$@" --exit-code "$code"
