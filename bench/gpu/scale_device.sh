#!/bin/bash
# One device call on the GPU host (no LLVM): issue #21's scale run. A
# Llama-3.1-8B-shaped model (models/llama-3.1-8b/config.json: rope_scaling
# llama3, GQA 32/8, head_dim 128) with HF's random init in bf16, written by
# save_pretrained as shards + index; then GRETA GPU bf16 prefill on that
# sharded checkpoint against HF (sdpa, bf16) on the same weights, side by
# side, with the cost of tracing 3 positions x every stage x every layer and
# the peak GPU memory of each (prefill_bench.py).
# The object comes from the build machine:
#   greta-compile models/llama-3.1-8b --backend gpu --precision bf16 \
#     -o OBJECTS_DIR/llama31-8b-gpu_bf16.so
#   bash bench/gpu/scale_device.sh OBJECTS_DIR [LENGTHS]
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OBJECTS_DIR [LENGTHS]" >&2; exit 2; }
cd "$(dirname "$0")/../.."
. bench/gpu/build_dev.sh
AOT=$1 LENGTHS=${2:-4096,16384,32768}
OUT=${OUT:-/tmp/greta-out} WORK=${WORK:-/tmp/greta-scale}
mkdir -p "$OUT"; rm -rf "$WORK"; mkdir -p "$WORK"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1
build_dev "$WORK/build.log" greta-run-aot
t0=$(date +%s)
python3 bench/gpu/gen_hf_model.py --config models/llama-3.1-8b/config.json --out "$WORK/m" \
  --dtype bfloat16 --max-shard-size 5GB --prompts "$LENGTHS" 2>&1 | tail -1 || exit 1
echo "model $(( $(date +%s) - t0 )) s: $(ls "$WORK/m" | grep -c '^model-.*safetensors$') shards, $(du -sh "$WORK/m" | cut -f1)"
PYTHONUNBUFFERED=1 python3 bench/gpu/prefill_bench.py --runner build-dev/bin/greta-run-aot \
  --so "$AOT/llama31-8b-gpu_bf16.so" --model-dir "$WORK/m" --lengths "$LENGTHS" \
  --hf-dtype bfloat16 --traces 3 --repeat 3 --trace-samples 2 --json "$OUT/scale.json" 2>&1 \
  | tee "$OUT/scale.log" | grep -v '^{'
