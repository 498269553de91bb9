#!/bin/bash
# Diagnostic (one device call): where the time of a traced GPU forward goes,
# with GRETA_GPU_TRACE_PROFILE=1 (host enqueue, compute-stream GPU time,
# end-of-call waits), untraced vs 3 positions vs one stage, on the
# TinyLlama-1.1B shape. Needs $AOT like model_device.sh.
set -u
AOT=${AOT:-.device-carry/aot}; WORK=${WORK:-/tmp/greta-work}; M=$WORK/models; T=$WORK/traces; mkdir -p $M $T
cmake -S . -B build-dev -G Ninja -DGRETA_RUNTIME_ONLY=ON -DGRETA_GPU=cuda -DGRETA_GPU_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Release > $T/build.log 2>&1 && ninja -C build-dev greta-run-aot >> $T/build.log 2>&1 \
  || { tail -30 $T/build.log; exit 1; }
python3 bench/gpu/gen_hf_model.py --config models/tinyllama-1.1b/config.json --out $M/1b --prompts 827,4096 | tail -1
for L in 827 4096; do
  for mode in "untraced" "3pos --positions 0,413,last" "3pos_1stage --positions 0,413,last --stages mlp_out" \
              "3pos_1layer --positions 0,413,last --layers 5"; do
    set -- $mode; name=$1; shift
    extra="$*"; [ $name != untraced ] && extra="$extra --trace-dir $T/p --overwrite"
    echo "== L=$L $name"
    GRETA_GPU_TRACE_PROFILE=1 build-dev/bin/greta-run-aot $AOT/tinyllama-1.1b-gpu_f16.so --weights $M/1b/model.safetensors \
      --prompt $M/1b/prompt_$L.json --repeat 4 --timing $extra 2>&1 | grep -E "profile|each" | tail -3
  done
done
which nsys ncu 2>&1 | head -2
