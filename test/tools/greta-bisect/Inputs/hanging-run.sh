#!/usr/bin/env bash
# Stand-in for greta-run that hangs where a test asks (interrupt.test,
# test/reliability/verdicts). Its own flags are stripped; greta-bisect's
# flag check (--dry-run) and every other run are greta-run ($GRETA_RUN).
#   --hang-if=FILE      with FILE present: write the pid to FILE.pid and
#                       hang before the forward (a long compile, say)
#   --hang-after-start  report the forward's start ($GRETA_STARTED_FILE,
#                       as greta-run does), then hang
args=() hang= started=0 dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --hang-if=*) hang=${1#--hang-if=} ;;
    --hang-after-start) started=1 ;;
    --dry-run) dry=1; args+=("$1") ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ $dry = 0 ] && [ -n "$hang" ] && [ -e "$hang" ]; then
  echo $$ > "$hang.pid.tmp" && mv "$hang.pid.tmp" "$hang.pid"
  exec sleep 100000
fi
if [ $dry = 0 ] && [ $started = 1 ]; then
  echo $$ > "$GRETA_STARTED_FILE"
  exec sleep 100000
fi
exec "$GRETA_RUN" "${args[@]}"
