#!/usr/bin/env bash
# Stand-in for greta-run in crash.test: a test run (--simulate-crash) writes
# its whole trace, then loses the second half of it and dies by SIGKILL. The
# manifest goes back to the one greta-run writes before its first record
# (complete false, records 0, no records_digest), as a run killed mid-way
# leaves it: a finished run's manifest over a cut records.bin is corruption.
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
  python3 - "$dir/manifest.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    m = json.load(f)
m.update(complete=False, records=0)
m.pop("records_digest", None)
with open(sys.argv[1], "w") as f:
    json.dump(m, f, indent=2)
EOF
  kill -9 $$
fi
