#!/usr/bin/env bash
# Compile check of the GPU kernel library and its test on a machine without
# a GPU (the build machine / CI): configures kernels/ standalone with nvcc
# and builds everything. Skips (exit 0, message) when no nvcc is found.
#   kernels/scripts/compile_check.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-gpu-check}
NVCC=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [ ! -x "$NVCC" ]; then
  echo "compile_check: no nvcc found, skipped"; exit 0
fi
cmake -S kernels -B "$BUILD" -G Ninja -DGRETA_GPU=cuda \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD"
# Without a GPU the test must say so and exit 2 (not crash, not pass).
set +e
"$BUILD/bin/greta-gpu-kernel-test" >"$BUILD/no-gpu.log" 2>&1
rc=$?
set -e
if [ $rc -eq 2 ]; then
  echo "compile_check: built; test reports no GPU as expected: $(head -1 "$BUILD/no-gpu.log")"
elif [ $rc -eq 0 ]; then
  echo "compile_check: built; a GPU is present and every test passed"
else
  echo "compile_check: test exited $rc"; cat "$BUILD/no-gpu.log"; exit 1
fi
