#!/usr/bin/env bash
# The whole GRETA test suite: set-up (install + build, no demo), then every
# lit test (IR snapshots, passes, tools end to end) and unit test; then the
# same suite again under AddressSanitizer + UndefinedBehaviorSanitizer (the
# `asan` CMake preset, built in build-asan/). Before the tests,
# scripts/check_deps.py checks that setup.sh installs every command they use.
# Tests that need what README.md calls optional (a GPU: lit REQUIRES: cuda;
# root for a tmpfs; ptrace) are reported as unsupported in both passes, never
# as passed.
#   scripts/test.sh          both passes (what CI runs)
#   scripts/test.sh --quick  the release pass only (everyday use)
# Exit status: 0 when every pass that ran is free of failures.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac
LIT=${LIT:-/usr/lib/llvm-22/bin/lit}

scripts/setup.sh --no-demo
# Every command and Python module the tests and scripts use must come from a
# package setup.sh installs: a tool that is here only by chance fails on a
# fresh machine (README.md, "Optional", lists what may be missing).
scripts/check_deps.py ||
  { echo "test.sh: dependency check failed (above); no tests run" >&2; exit 1; }

# run_suite NAME BUILD_DIR: runs lit on BUILD_DIR/test, appends one summary
# line to $summary and returns lit's exit status.
summary=""
run_suite() {
  local name=$1 dir=$2 log rc
  log=$(mktemp)
  set +e
  "$LIT" -sv "$dir/test" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  # lit's closing counts ("  Passed : 12 (98.00%)"); the last ones, in
  # case a test's own output looks alike.
  count() {
    local n
    n=$(grep -oP "^\s*$1\s*:\s*\K[0-9]+" "$log" | tail -1 || true)
    echo "${n:-0}"
  }
  local passed failed skipped xfail
  passed=$(count Passed)
  # Everything lit counts as a failure of the suite.
  failed=$(( $(count Failed) + $(count "Unexpectedly Passed") + \
             $(count Unresolved) + $(count "Timed Out") ))
  skipped=$(count Unsupported)
  xfail=$(count "Expectedly Failed")
  rm -f "$log"
  summary+="$name: ${passed} passed, ${failed} failed, ${skipped} skipped"
  [ "$xfail" != 0 ] && summary+=", ${xfail} expectedly failed"
  [ "$rc" != 0 ] && [ "$failed" = 0 ] && summary+=" (lit exit $rc)"
  summary+=$'\n'
  return "$rc"
}

status=0
run_suite "release" build || status=1

if [ "$quick" = 1 ]; then
  summary+=$'asan+ubsan: not run (--quick)\n'
else
  echo "== configuring and building the ASan+UBSan preset (build-asan/)"
  if { [ -f build-asan/build.ninja ] || cmake --preset asan > /dev/null; } &&
     ninja -C build-asan; then
    run_suite "asan+ubsan" build-asan || status=1
  else
    summary+=$'asan+ubsan: build failed\n'
    status=1
  fi
fi

# Closing lines any CI can read: one per pass.
echo
printf '%s' "$summary"
exit "$status"
