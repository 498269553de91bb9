#!/usr/bin/env bash
# A "rebuilt greta-run" for resume-stale.test: resume-stale.test copies this
# script and edits the copy's FAULT line, as a rebuild would change what the
# binary computes. With FAULT set, a run given --side=test (stripped) plants
# it; every other run is greta-run ($GRETA_RUN) as it is.
FAULT=
args=() test=0
for a in "$@"; do
  case "$a" in
    --side=test) test=1 ;;
    *) args+=("$a") ;;
  esac
done
if [ $test = 1 ] && [ -n "$FAULT" ]; then
  args+=("--pass-pipeline=$FAULT")
fi
exec "$GRETA_RUN" "${args[@]}"
