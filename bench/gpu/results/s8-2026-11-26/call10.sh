#!/bin/bash
# Session 8, call 10: the committed code's overheads, interleaved rounds:
# 3 positions (12 rounds) and every row (8 rounds) against untraced.
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd)
M=/tmp/greta-models; BD=/tmp/build-dev
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
echo "tree: $(cat REV)"
{ cmake -S . -B $BD -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BD greta-run-aot greta-diff; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
[ -f $M/1b/prompt_4096.json ] || python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653,4096 2>&1 | tail -1
R=$BD/bin/greta-run-aot; SO=$NEW/tinyllama-1.1b-gpu_f16.so
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 827,1653,4096 --rounds 12 --repeat 6 \
  --config final=$R --json $OUT/ab3.json
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 827,1653 --rounds 8 --repeat 6 --positions all \
  --config final=$R --json $OUT/aball.json
