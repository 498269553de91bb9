#!/usr/bin/env bash
# Stand-in for greta-run in crash.test: a test run (--simulate-crash) writes
# its whole trace, then loses the second half of it and dies by SIGKILL.
# greta-bisect's flag check (--dry-run) runs greta-run as it is.
args=() crash=0 dir= dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --simulate-crash) crash=1 ;;
    --dry-run) dry=1; args+=("$1") ;;
    --trace-dir) dir=$2; args+=("$1" "$2"); shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
"$GRETA_RUN" "${args[@]}" || exit $?
if [ $crash = 1 ] && [ $dry = 0 ]; then
  size=$(stat -c %s "$dir/records.bin")
  truncate -s $((size / 2)) "$dir/records.bin"
  kill -9 $$
fi
