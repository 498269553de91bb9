#!/bin/bash
# Session 8, call 8: the logits' chains alone on their SMs after the forward
# (switch GRETA_EXP_EXCL=1: the split kernel reserves 200 KB of shared
# memory, the one-thread kernel 32 KB, so no one-thread block fits beside a
# logits block).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd)
M=/tmp/greta-models; BD=/tmp/build-dev
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
t0=$(date +%s)
{ cmake -S . -B $BD -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BD greta-run-aot greta-diff; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
[ -f $M/1b/prompt_1653.json ] || python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653 2>&1 | tail -1
R=$BD/bin/greta-run-aot; SO=$NEW/tinyllama-1.1b-gpu_f16.so
T=/tmp/tr; rm -rf $T; mkdir -p $T
for v in plain excl; do
  env $([ $v = excl ] && echo GRETA_EXP_EXCL=1) $R $SO --weights $M/1b/model.safetensors --prompt $M/1b/prompt_827.json --positions all --trace-dir $T/$v --overwrite 2>&1 | grep "^trace:"
done
cmp $T/plain/records.bin $T/excl/records.bin && echo "every row 827: records.bin identical"
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 827,1653 --rounds 8 --repeat 6 --positions all \
  --config plain=$R --config excl=$R:GRETA_EXP_EXCL=1 --json $OUT/ab.json
