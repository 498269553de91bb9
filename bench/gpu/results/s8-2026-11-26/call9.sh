#!/bin/bash
# Session 8, call 9: the full prefill table (GRETA vs HF sdpa fp16, 3
# positions and every row) with the committed code.
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd)
M=/tmp/greta-models; BD=/tmp/build-dev
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
echo "tree: $(cat REV)"
t0=$(date +%s)
{ cmake -S . -B $BD -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BD greta-run-aot greta-diff; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653,4096,16384 2>&1 | tail -1
PYTHONUNBUFFERED=1 python3 bench/gpu/prefill_bench.py --runner $BD/bin/greta-run-aot \
  --so $NEW/tinyllama-1.1b-gpu_f16.so --model-dir $M/1b --lengths 827,1653,4096,16384 \
  --trace-samples 5 --json $OUT/prefill.json 2>&1 | grep -v "Loading weights"
