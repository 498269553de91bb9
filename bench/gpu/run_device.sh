#!/usr/bin/env bash
# One device call: build the kernel library + tests with cmake/ninja/nvcc,
# run the correctness tests, then the benchmark. Logs go to $OUT (or ./out).
#   bash bench/gpu/run_device.sh [--quick] [--only attention|trace] [bench.py args...]
# --quick shortens the test and the bench; --only and any other argument go
# to bench.py only.
set -uo pipefail
OUT=${OUT:-$PWD/out-gpu}
mkdir -p "$OUT"
QUICK=""
BENCH_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=--quick ;;
    --only) BENCH_ARGS+=(--only "$2"); shift ;;
    *) BENCH_ARGS+=("$1") ;;
  esac
  shift
done
{
  echo "== $(date -u +%FT%TZ) $(uname -r)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  nvcc --version | tail -2
  cmake --version | head -1
} 2>&1 | tee "$OUT/env.log"
t0=$(date +%s)
cmake -S kernels -B build-gpu -G Ninja -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release \
  >"$OUT/build.log" 2>&1 && ninja -C build-gpu >>"$OUT/build.log" 2>&1
rc=$?
echo "build rc=$rc in $(( $(date +%s) - t0 )) s"
if [ $rc -ne 0 ]; then tail -40 "$OUT/build.log"; exit $rc; fi
t0=$(date +%s)
./build-gpu/bin/greta-gpu-kernel-test $QUICK >"$OUT/test.log" 2>&1
trc=$?
echo "test rc=$trc in $(( $(date +%s) - t0 )) s"
grep -E "^(FAIL|device|seed|RESULT)" "$OUT/test.log" | head -40
t0=$(date +%s)
PYTHONUNBUFFERED=1 python3 bench/gpu/bench.py --lib build-gpu/lib/libgreta_gpu_kernels.so \
  --json "$OUT/bench.json" $QUICK ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} >"$OUT/bench.log" 2>&1
brc=$?
echo "bench rc=$brc in $(( $(date +%s) - t0 )) s"
tail -60 "$OUT/bench.log"
exit $(( trc != 0 ? trc : brc ))
