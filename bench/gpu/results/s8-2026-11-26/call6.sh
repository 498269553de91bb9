#!/bin/bash
# Session 8, call 6: every-row tracing with all rows hashed after the
# forward (switch GRETA_EXP_DEFER_ALL=1: no 64 K-record batches, the traced
# tensors held to the end of the call) against the committed batches.
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd)
M=/tmp/greta-models; BD=/tmp/build-dev
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
t0=$(date +%s)
{ cmake -S . -B $BD -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BD greta-run-aot greta-diff; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
[ -f $M/1b/prompt_4096.json ] || python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653,4096 2>&1 | tail -1
R=$BD/bin/greta-run-aot; SO=$NEW/tinyllama-1.1b-gpu_f16.so
T=/tmp/tr; rm -rf $T; mkdir -p $T
for L in 827 1653; do
  for v in batches defer; do
    env $([ $v = defer ] && echo GRETA_EXP_DEFER_ALL=1) GRETA_GPU_TRACE_PROFILE=1 $R $SO --weights $M/1b/model.safetensors --prompt $M/1b/prompt_$L.json --positions all --trace-dir $T/$v --overwrite 2>&1 | grep "^trace:\|greta trace profile" | cut -c1-400
  done
  cmp $T/batches/records.bin $T/defer/records.bin && echo "every row $L: records.bin identical"
done
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 827,1653,4096 --rounds 6 --repeat 6 --positions all \
  --config batches=$R --config defer=$R:GRETA_EXP_DEFER_ALL=1 --json $OUT/ab.json
