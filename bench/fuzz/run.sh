#!/usr/bin/env bash
# Builds GRETA's libFuzzer targets (fuzz/) with clang-22, ASan + UBSan, and
# runs each for a set time on its committed seeds (fuzz/corpus/<target>/),
# then prints: target, execs, crashes, hangs, leaks.
#
#   bench/fuzz/run.sh [SECONDS_PER_TARGET=60] [TARGET...]
#   env: BUILD=build-fuzz  JOBS=2  TIMEOUT=10 (s per input: slower = hang)
#        RSS_LIMIT=2048 (MiB)  OUT=<BUILD>/fuzz-out
#
# Leak detection is on (libFuzzer -detect_leaks=1, ASAN_OPTIONS
# detect_leaks=1). Inputs the fuzzer found interesting go to OUT/<target>/
# corpus (the committed seeds are never modified); crash-*, timeout-*,
# leak-* and oom-* reproducers go to OUT/<target>/artifacts. Exit status: 0
# when every target ran clean, 1 when something was found, 2 on a build
# error.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(safetensors trace manifest prompt hf-config)
BUILD=${BUILD:-$SRC/build-fuzz}
JOBS=${JOBS:-2}
TIMEOUT=${TIMEOUT:-10}
RSS_LIMIT=${RSS_LIMIT:-2048}
OUT=${OUT:-$BUILD/fuzz-out}
CC=${CC:-clang-22}
CXX=${CXX:-clang++-22}

if ! command -v "$CXX" >/dev/null; then
  echo "run.sh: $CXX not found (Debian: apt-get install clang-22 libclang-rt-22-dev)" >&2
  exit 2
fi

SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -gline-tables-only"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$SRC" -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir -DMLIR_LINK_MLIR_DYLIB=ON \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
    -DPython3_EXECUTABLE=/usr/bin/python3 \
    -DGRETA_FUZZ=ON >"$BUILD.configure.log" 2>&1 ||
    { cat "$BUILD.configure.log" >&2; exit 2; }
fi
ninja -C "$BUILD" -j"$JOBS" $(printf 'greta-fuzz-%s ' "${TARGETS[@]}") >"$BUILD.build.log" 2>&1 ||
  { tail -40 "$BUILD.build.log" >&2; exit 2; }

# UBSan aborts (-fno-sanitize-recover); LSan on; a leak counts as a finding.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=${LSAN_OPTIONS:-}
declare -A ROW
status=0
for t in "${TARGETS[@]}"; do
  bin=$BUILD/fuzz/greta-fuzz-$t
  corpus=$OUT/$t/corpus
  art=$OUT/$t/artifacts
  # Findings of earlier runs are not this run's: keep them aside.
  if [ -d "$art" ] && [ -n "$(ls -A "$art")" ]; then
    mkdir -p "$OUT/$t/earlier"
    mv "$art"/* "$OUT/$t/earlier/"
  fi
  mkdir -p "$corpus" "$art"
  log=$OUT/$t/fuzz.log
  # One libFuzzer process stops at its first finding: restart it (same
  # corpus, the rest of the time) so one run counts every finding.
  : >"$log"
  deadline=$((SECONDS + SECS))
  execs=0
  rc=0
  while [ $SECONDS -lt $deadline ]; do
    set +e
    "$bin" "$corpus" "$SRC/fuzz/corpus/$t" \
      -max_total_time=$((deadline - SECONDS)) -timeout="$TIMEOUT" \
      -rss_limit_mb="$RSS_LIMIT" -detect_leaks=1 -max_len=65536 \
      -print_final_stats=1 -print_funcs=0 -artifact_prefix="$art/" \
      >"$log.part" 2>&1
    rc=$?
    set -e
    cat "$log.part" >>"$log"
    # Executions of this process: its final stats, else its last status line.
    n=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log.part" | grep -o '[0-9]*$' | tail -1 || true)
    [ -z "$n" ] && n=$(grep -ao '^#[0-9]*' "$log.part" | tr -d '#' | tail -1 || true)
    execs=$((execs + ${n:-0}))
    [ $rc -eq 0 ] && break
  done
  rm -f "$log.part"
  crashes=$(ls "$art" | grep -c '^crash-' || true)
  hangs=$(ls "$art" | grep -c '^timeout-' || true)
  leaks=$(ls "$art" | grep -c '^leak-' || true)
  ooms=$(ls "$art" | grep -c '^oom-' || true)
  ROW[$t]="$execs $crashes $hangs $leaks $ooms $rc"
  if [ $((crashes + hangs + leaks + ooms)) -ne 0 ]; then status=1; fi
done

printf '\n%-12s %12s %8s %6s %6s %6s   %s\n' target execs crashes hangs leaks ooms "(${SECS} s each, ASan+UBSan, leak detection on)"
for t in "${TARGETS[@]}"; do
  read -r execs crashes hangs leaks ooms rc <<<"${ROW[$t]}"
  printf '%-12s %12s %8s %6s %6s %6s\n' "$t" "$execs" "$crashes" "$hangs" "$leaks" "$ooms"
done
echo "reproducers and logs: $OUT/<target>/{artifacts,fuzz.log}"
exit $status
