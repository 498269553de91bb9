#!/usr/bin/env bash
# One device call: build, the full test with a fresh seed, then the --small
# test set under compute-sanitizer memcheck and racecheck (shared-memory
# races in the attention kernels). Logs to $OUT.
set -uo pipefail
OUT=${OUT:-$PWD/out-gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.log"
cmake -S kernels -B build-gpu -G Ninja -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release \
  >"$OUT/build.log" 2>&1 && ninja -C build-gpu >>"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
T=build-gpu/bin/greta-gpu-kernel-test
$T >"$OUT/test.log" 2>&1; trc=$?
echo "full test rc=$trc: $(grep -E '^==== ' "$OUT/test.log")"; grep -E "^(seed|FAIL)" "$OUT/test.log" | head
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
src=0
for tool in racecheck memcheck; do
  t0=$(date +%s)
  timeout 170 "$CS" --tool $tool --error-exitcode 9 $T --small >"$OUT/sanitize-$tool.log" 2>&1
  rc=$?
  echo "compute-sanitizer $tool rc=$rc in $(( $(date +%s) - t0 )) s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^==== ' "$OUT/sanitize-$tool.log" | tr '\n' ' ')"
  [ $rc -ne 0 ] && src=$rc && grep -m5 -E "Error|Race|hazard" "$OUT/sanitize-$tool.log"
done
exit $(( trc != 0 ? trc : src ))
