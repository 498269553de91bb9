#!/bin/bash
# Before scripts/hf_refs/gpu_device.sh, on a machine with LLVM (the device
# has none): the GPU objects of every HF reference family (dense and MoE) in f16 and
# bf16, and the planted llama3 RoPE bug's objects (docs/MODELS.md).
#   scripts/hf_refs/gpu_objects.sh TOOLS_DIR OUT_DIR
# OUT_DIR/FAMILY-gpu_{f16,bf16}.so (MoE families also -cpu_f32, -gpu_f32); for the planted bug, llama-rope-llama3.mlir
# and llama-rope-llama3-rope_bug.mlir (layer 1's q/k RoPE with
# low_freq_factor 2 instead of 1), their objects
# llama-rope-llama3-mlir-gpu_{f16,bf16}.so and
# llama-rope-llama3-gpu_{f16,bf16}-rope_bug.so, and
# llama-rope-llama3-cpu_f64.so (the bisection's reference).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 TOOLS_DIR OUT_DIR" >&2; exit 2; }
TOOLS=$1 OUT=$2
cd "$(dirname "$0")/../.."
REFS=models/hf-refs
FAMILIES="llama llama-rope-linear llama-rope-dynamic llama-rope-llama3 llama-rope-yarn llama-rope-longrope mistral qwen2 qwen3 gemma phi3 mixtral qwen2-moe qwen3-moe"
BUG='greta-rope-llama3-fault{layer=1 factor=8 low-freq-factor=2 high-freq-factor=4 original-max-position=32}'
mkdir -p "$OUT"
for f in $FAMILIES; do
  for p in f16 bf16; do
    "$TOOLS/greta-compile" "$REFS/$f/checkpoint" --backend gpu --precision $p -o "$OUT/$f-gpu_$p.so"
  done
done
# The MoE families' f32 objects, CPU and GPU: gpu_device.sh step 4 checks
# that both choose the same experts.
for f in mixtral qwen2-moe qwen3-moe; do
  "$TOOLS/greta-compile" "$REFS/$f/checkpoint" --backend cpu --precision f32 -o "$OUT/$f-cpu_f32.so"
  "$TOOLS/greta-compile" "$REFS/$f/checkpoint" --backend gpu --precision f32 -o "$OUT/$f-gpu_f32.so"
done
# The bug as a graph of its own (greta-bisect --test-model): the runtime-only
# greta-run on the device checks each object against its model's digest.
L3=llama-rope-llama3
"$TOOLS/greta-translate" --import-hf-config "$REFS/$L3/checkpoint" -o "$OUT/$L3.mlir"
"$TOOLS/greta-opt" "$OUT/$L3.mlir" --pass-pipeline="builtin.module($BUG)" -o "$OUT/$L3-rope_bug.mlir"
for p in f16 bf16; do
  "$TOOLS/greta-compile" "$OUT/$L3.mlir" --backend gpu --precision $p -o "$OUT/$L3-mlir-gpu_$p.so"
  "$TOOLS/greta-compile" "$OUT/$L3-rope_bug.mlir" --backend gpu --precision $p -o "$OUT/$L3-gpu_$p-rope_bug.so"
done
"$TOOLS/greta-compile" "$OUT/$L3.mlir" --backend cpu --precision f64 -o "$OUT/$L3-cpu_f64.so"
echo "gpu_objects: $(ls "$OUT"/*.so | wc -l) objects, $(du -sh "$OUT" | cut -f1) in $OUT"
