#!/bin/bash
# Session 8, call 3: the final hash pool's caller watches instead of hashing
# a row (switch GRETA_EXP_CALLER_HASHES=1: the previous behaviour).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd)
M=/tmp/greta-models; BD=/tmp/build-dev
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
t0=$(date +%s)
{ cmake -S . -B $BD -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BD greta-run-aot greta-diff; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
[ -f $M/1b/prompt_1653.json ] || python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653 2>&1 | tail -1
echo "models $(( $(date +%s) - t0 )) s"
R=$BD/bin/greta-run-aot; SO=$NEW/tinyllama-1.1b-gpu_f16.so
T=/tmp/tr; rm -rf $T; mkdir -p $T
for L in 827 1653; do
  for cfg in watch caller; do
    env=""; [ $cfg = caller ] && env="GRETA_EXP_CALLER_HASHES=1"
    for i in 1 2 3 4 5 6; do
      env $env GRETA_GPU_TRACE_PROFILE=1 $R $SO --weights $M/1b/model.safetensors --prompt $M/1b/prompt_$L.json --positions 0,$((L/2)),last --trace-dir $T/$cfg --overwrite --repeat 4 2>&1 >/dev/null | grep "greta trace rows" | tail -1 | sed "s/^/$L $cfg: /" | cut -c1-200
    done
  done
  cmp $T/watch/records.bin $T/caller/records.bin && echo "$L: records.bin identical"
done
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 827,1653 --rounds 12 --repeat 6 --config watch=$R --config caller=$R:GRETA_EXP_CALLER_HASHES=1 --json $OUT/ab.json
