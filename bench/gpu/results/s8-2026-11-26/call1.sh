#!/bin/bash
# Session 8, call 1: trace_repeat (residual_pre_attn of L+1 and embed_out's
# twin reuse the previous trace's records). Runtime = this tree; objects:
# ../aot-new (greta-compile with trace_repeat) against ../aot (without).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd); OLD=$(cd ../aot && pwd)
M=/tmp/greta-models
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
t0=$(date +%s)
{ cmake -S . -B build-dev -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C build-dev greta-run-aot greta-diff; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653 2>&1 | tail -1
python3 bench/gpu/gen_hf_model.py --config models/llama-tiny/config.json --out $M/tiny --prompts 827 2>&1 | tail -1
echo "models $(( $(date +%s) - t0 )) s"
R=$PWD/build-dev/bin/greta-run-aot; D=$PWD/build-dev/bin/greta-diff
T=/tmp/tr; rm -rf $T; mkdir -p $T
echo "== correctness: records.bin of the objects with and without trace_repeat"
for pos in all 0,413,last; do
  for v in new old; do
    so=$([ $v = new ] && echo $NEW || echo $OLD)/tinyllama-1.1b-gpu_f16.so
    $R $so --weights $M/1b/model.safetensors --prompt $M/1b/prompt_827.json --positions $pos --trace-dir $T/$v-$pos --overwrite > $T/$v.txt 2>&1 || { echo "run $v $pos failed"; tail -5 $T/$v.txt; }
    grep "^trace:" $T/$v.txt
  done
  cmp $T/new-$pos/records.bin $T/old-$pos/records.bin && echo "1.1B 827 tokens positions=$pos: records.bin identical"
done
for v in new old; do
  so=$([ $v = new ] && echo $NEW || echo $OLD)/llama-tiny-gpu_f16.so
  $R $so --weights $M/tiny/model.safetensors --prompt $M/tiny/prompt_827.json --positions all --payload full --trace-dir $T/tiny-$v --overwrite 2>&1 | grep "^trace:"
done
cmp $T/tiny-new/records.bin $T/tiny-old/records.bin && echo "llama-tiny every row, payload full: records.bin identical"
python3 python/greta_trace.py $T/tiny-new --verify | tail -1
$R $NEW/llama-tiny-gpu_f16.so --weights $M/tiny/model.safetensors --prompt $M/tiny/prompt_827.json --positions 0,5,last --stages residual_pre_attn --payload full --trace-dir $T/tiny-pre --overwrite 2>&1 | grep "^trace:"
$D $T/tiny-pre $T/tiny-new | tail -3
echo "== A/B every row"
python3 bench/gpu/trace_overhead_ab.py --so $OLD/tinyllama-1.1b-gpu_f16.so --model-dir $M/1b --lengths 827,1653 --rounds 8 --repeat 6 --positions all --config repeat=$R:SO=$NEW/tinyllama-1.1b-gpu_f16.so --config norepeat=$R --json $OUT/ab-all.json
echo "== A/B 3 positions"
python3 bench/gpu/trace_overhead_ab.py --so $OLD/tinyllama-1.1b-gpu_f16.so --model-dir $M/1b --lengths 827,1653 --rounds 6 --repeat 6 --config repeat=$R:SO=$NEW/tinyllama-1.1b-gpu_f16.so --config norepeat=$R --json $OUT/ab-3.json
