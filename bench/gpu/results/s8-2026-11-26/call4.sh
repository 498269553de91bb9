#!/bin/bash
# Session 8, call 4: the one-thread SHA-256 kernel in chunks of C
# compressions per launch (experiment switch GRETA_EXP_SHA_CHUNK=C; 0 =
# the whole chain in one launch, the committed behaviour).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd)
M=/tmp/greta-models; BD=/tmp/build-dev
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
t0=$(date +%s)
{ cmake -S . -B $BD -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BD greta-run-aot greta-diff greta-gpu-kernel-test; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
for c in 0 3; do GRETA_EXP_SHA_CHUNK=$c $BD/bin/greta-gpu-kernel-test --quick > $OUT/kt$c.log 2>&1; echo "kernel test chunk $c: rc=$? $(tail -1 $OUT/kt$c.log)"; done
t0=$(date +%s)
[ -f $M/1b/prompt_1653.json ] || python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653 2>&1 | tail -1
echo "models $(( $(date +%s) - t0 )) s"
R=$BD/bin/greta-run-aot; SO=$NEW/tinyllama-1.1b-gpu_f16.so
T=/tmp/tr; rm -rf $T; mkdir -p $T
for c in 0 8 2; do
  GRETA_EXP_SHA_CHUNK=$c $R $SO --weights $M/1b/model.safetensors --prompt $M/1b/prompt_827.json --positions all --trace-dir $T/c$c --overwrite 2>&1 | grep "^trace:"
done
cmp $T/c0/records.bin $T/c8/records.bin && cmp $T/c0/records.bin $T/c2/records.bin && echo "every row 827: records.bin identical for chunks 0, 8, 2"
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 827,1653 --rounds 6 --repeat 6 --positions all \
  --config c0=$R:GRETA_EXP_SHA_CHUNK=0 --config c16=$R:GRETA_EXP_SHA_CHUNK=16 --config c8=$R:GRETA_EXP_SHA_CHUNK=8 --config c4=$R:GRETA_EXP_SHA_CHUNK=4 --json $OUT/ab.json
