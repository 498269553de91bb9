#!/bin/bash
# One device call on the GPU host (no LLVM): issue #25's GPU must-show. A
# Mixtral-8x7B-shaped model truncated to 2 layers
# (models/mixtral-8x7b-2l/config.json: hidden 4096, 8 experts of 14336,
# top-2, GQA 32/8; ~6.2 GB in f16) with HF's random init in f16, made here
# by gen_hf_model.py; then GRETA GPU f16 prefill at 4K tokens (and LENGTHS)
# against HF (MixtralForCausalLM, sdpa, f16) on the same weights, side by
# side with their ratio, with the cost of tracing 3 positions x every stage
# x every layer and the peak GPU memory of each (prefill_bench.py); with
# PROFILE=1 also where the time goes on both sides.
# The object comes from the build machine:
#   greta-compile models/mixtral-8x7b-2l --backend gpu --precision f16 \
#     -o OBJECTS_DIR/mixtral-8x7b-2l-gpu_f16.so
#   bash bench/gpu/moe_device.sh OBJECTS_DIR [LENGTHS]
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OBJECTS_DIR [LENGTHS]" >&2; exit 2; }
cd "$(dirname "$0")/../.."
. bench/gpu/build_dev.sh
AOT=$1 LENGTHS=${2:-1024,4096}
OUT=${OUT:-/tmp/greta-out} WORK=${WORK:-/tmp/greta-moe}
mkdir -p "$OUT"; rm -rf "$WORK"; mkdir -p "$WORK"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1
build_dev "$WORK/build.log" greta-run-aot
t0=$(date +%s)
python3 bench/gpu/gen_hf_model.py --config models/mixtral-8x7b-2l/config.json --out "$WORK/m" \
  --dtype float16 --prompts "$LENGTHS" 2>&1 | tail -1 || exit 1
echo "model $(( $(date +%s) - t0 )) s: $(du -sh "$WORK/m" | cut -f1)"
SO="$AOT/mixtral-8x7b-2l-gpu_f16.so"
PYTHONUNBUFFERED=1 python3 bench/gpu/prefill_bench.py --runner build-dev/bin/greta-run-aot \
  --so "$SO" --model-dir "$WORK/m" --lengths "$LENGTHS" \
  --hf-dtype float16 --traces 3 --repeat 4 --trace-samples 2 --json "$OUT/moe.json" 2>&1 \
  | tee "$OUT/moe.log" | grep -v '^{'
if [ "${PROFILE:-0}" = 1 ]; then
  PYTHONUNBUFFERED=1 python3 bench/gpu/prefill_bench.py --runner build-dev/bin/greta-run-aot \
    --so "$SO" --model-dir "$WORK/m" --lengths 4096 --hf-dtype float16 --profile 2>&1 \
    | tee "$OUT/moe-profile.log"
fi
