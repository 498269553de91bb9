#!/bin/bash
# Session 8, call 7: every-row batches stay open until the logits (or the
# held-memory limit); a batch that outgrows its records chunk moves to a
# larger one. New runtime (this tree) against ../old (HEAD before it).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
NEW=$(cd ../aot-new && pwd); OLDSRC=$(cd ../old && pwd)
M=/tmp/greta-models; BD=/tmp/build-dev; BO=/tmp/build-old
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
t0=$(date +%s)
{ cmake -S . -B $BD -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BD greta-run-aot greta-diff; } > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
{ cmake -S $OLDSRC -B $BO -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DCMAKE_BUILD_TYPE=Release && ninja -C $BO greta-run-aot; } > $OUT/build-old.log 2>&1 || { tail -30 $OUT/build-old.log; exit 1; }
echo "builds $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,1653,4096,16384 2>&1 | tail -1
python3 bench/gpu/gen_hf_model.py --config models/llama-tiny/config.json --out $M/tiny --prompts 827 2>&1 | tail -1
echo "models $(( $(date +%s) - t0 )) s"
R=$BD/bin/greta-run-aot; RO=$BO/bin/greta-run-aot; SO=$NEW/tinyllama-1.1b-gpu_f16.so
T=/tmp/tr; rm -rf $T; mkdir -p $T
W=$M/1b/model.safetensors
echo "== correctness (records.bin new vs old runtime)"
for L in 827 1653; do
  for args in "" "--repeat 3" "--chunk 300"; do
    tag=$(echo "$L$args" | tr -d ' -')
    GRETA_GPU_TRACE_PROFILE=1 $R $SO --weights $W --prompt $M/1b/prompt_$L.json --positions all --trace-dir $T/new-$tag --overwrite $args 2>$T/new-$tag.err | grep "^trace:"
    grep "greta trace profile" $T/new-$tag.err | tail -1 | cut -c1-60
    $RO $SO --weights $W --prompt $M/1b/prompt_$L.json --positions all --trace-dir $T/old-$tag --overwrite $args 2>/dev/null | grep "^trace:"
    cmp $T/new-$tag/records.bin $T/old-$tag/records.bin && echo "$L $args: records.bin identical"
  done
done
$R $NEW/llama-tiny-gpu_f16.so --weights $M/tiny/model.safetensors --prompt $M/tiny/prompt_827.json --positions all --payload full --trace-dir $T/tiny --overwrite | grep "^trace:"
python3 python/greta_trace.py $T/tiny --verify | tail -1
$RO $NEW/llama-tiny-gpu_f16.so --weights $M/tiny/model.safetensors --prompt $M/tiny/prompt_827.json --positions all --payload full --trace-dir $T/tiny-old --overwrite | grep "^trace:"
cmp $T/tiny/records.bin $T/tiny-old/records.bin && echo "llama-tiny every row payload full: records.bin identical"
echo "== A/B every row"
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 827,1653,4096 --rounds 6 --repeat 6 --positions all \
  --config new=$R --config old=$RO --json $OUT/ab.json
echo "== 16384 every row, 2 rounds"
python3 bench/gpu/trace_overhead_ab.py --so $SO --model-dir $M/1b --lengths 16384 --rounds 2 --repeat 3 --positions all \
  --config new=$R --config old=$RO --json $OUT/ab16k.json
