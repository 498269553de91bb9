#!/usr/bin/env bash
# The whole GRETA test suite: set-up (install + build, no demo), then every
# lit test (IR snapshots, passes, tools end to end) and unit test. GPU tests
# run only where a GPU answers (lit REQUIRES: cuda); elsewhere they are
# reported as unsupported, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-demo
log=$(mktemp)
set +e
/usr/lib/llvm-22/bin/lit -sv build/test 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One closing line any CI can read.
passed=$(grep -oP '^\s*Passed\s*:\s*\K[0-9]+' "$log" || echo 0)
failed=$(grep -oP '^\s*Failed\s*:\s*\K[0-9]+' "$log" || echo 0)
skipped=$(grep -oP '^\s*Unsupported\s*:\s*\K[0-9]+' "$log" || echo 0)
rm -f "$log"
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$rc"
