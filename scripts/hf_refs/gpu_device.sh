#!/bin/bash
# One device call on the GPU machine (CUDA, torch, transformers 5.x; no
# LLVM): issue #21's GPU checks of the HF reference families.
#  1. the runtime-only GPU build and the kernel test (--quick; the family
#     kernels' lines: rms_norm_offset, per-head rms_norm, linear_bias, geglu,
#     scale, rope_freqs, attention_window under every variant);
#  2. scripts/hf_refs/gpu_families.py: every family (dense and MoE) in GRETA GPU f16
#     and bf16 on the family's checkpoint, per stage GRETA's error against
#     HF fp32, HF's own fp16/bf16 error measured again here on the same
#     weights (--hf-rerun; the committed lowp_error.json when torch cannot),
#     and the ratio (target <= 1.5);
#  3. the planted llama3 RoPE bug on the GPU: greta-bisect between the clean
#     and the faulty GPU objects (f16, bf16), the CPU f64 object as the
#     reference; it must name (q_post_rope, layer 1, position 1).
#  4. the MoE families (mixtral, qwen2-moe, qwen3-moe): GPU f32 and CPU f32
#     choose the same experts at every layer and position
#     (test/Target/Inputs/same_experts.py).
# The objects come from scripts/hf_refs/gpu_objects.sh (run where LLVM is).
#   bash scripts/hf_refs/gpu_device.sh OBJECTS_DIR [OUT_DIR]
set -u
[ $# -ge 1 ] || { echo "usage: $0 OBJECTS_DIR [OUT_DIR]" >&2; exit 2; }
cd "$(dirname "$0")/../.."
. bench/gpu/build_dev.sh
AOT=$1 OUT=${2:-${OUT:-/tmp/greta-out}}
WORK=${WORK:-/tmp/hf-gpu-work}
PY=${PYTHON:-python3}
mkdir -p "$OUT"; rm -rf "$WORK"; mkdir -p "$WORK"
export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1
t0=$(date +%s)
build_dev "$WORK/build.log" greta-run greta-run-aot greta-diff greta-bisect greta-gpu-kernel-test
B=build-dev/bin

echo "== 1. kernel test (--quick)"
$B/greta-gpu-kernel-test --quick > "$OUT/kernel-test.log" 2>&1; echo "kernel test rc=$?"
grep -E "^FAIL" "$OUT/kernel-test.log" | head -20
echo "  $(grep -c '^ok' "$OUT/kernel-test.log") ok, $(grep -c '^FAIL' "$OUT/kernel-test.log") FAIL;" \
  "family kernels: $(grep -cE '^ok +(rms_norm_offset|rms_norm per head|linear_bias|geglu|scale|rope_freqs|attention_window)' "$OUT/kernel-test.log") ok;" \
  "MoE kernels: $(grep -cE '^ok +(moe_router|moe_accumulate|sigmoid_gate_add)' "$OUT/kernel-test.log") ok"

echo "== 2. families: GRETA GPU vs HF fp32, against HF's own fp16/bf16 error"
HFRERUN=--hf-rerun
$PY -c "import torch, transformers; assert torch.cuda.is_available()" 2>/dev/null \
  || { HFRERUN=; echo "(no torch+cuda: HF's committed lowp_error.json)"; }
$PY scripts/hf_refs/gpu_families.py --tools $B --refs models/hf-refs --work "$WORK/fam" \
  --objects "$AOT" $HFRERUN --table > "$OUT/families.txt" 2> "$OUT/families.err"
echo "families rc=$? (0: every ratio <= 1.5)"
grep -E "^[a-z0-9-]+ b?f16:|^over" "$OUT/families.txt"; tail -5 "$OUT/families.err"

echo "== 3. planted llama3 RoPE bug (layer 1, low_freq_factor 2), GPU"
for p in f16 bf16; do
  L3=$AOT/llama-rope-llama3
  timeout 300 $B/greta-bisect -q --model "$L3.mlir" --test-model "$L3-rope_bug.mlir" \
    --weights models/hf-refs/llama-rope-llama3/checkpoint --prompt models/hf-refs/prompt.json \
    --base "--so=$L3-mlir-gpu_$p.so" --test "--so=$L3-gpu_$p-rope_bug.so" \
    --ref "--so=$L3-cpu_f64.so" --work-dir "$WORK/bisect-$p" \
    --format json -o "$OUT/bisect-rope-bug-$p.json" 2> "$WORK/bisect-$p.err"
  echo "bisect $p rc=$? (1 = divergence found)"; tail -2 "$WORK/bisect-$p.err"
  $PY test/tools/greta-bisect/Inputs/check_bisect.py "$OUT/bisect-rope-bug-$p.json" \
    --stage q_post_rope --layer 1 --position 1 --max-runs 5 \
    && echo "  $p: FIRST_FAIL (q_post_rope, 1, 1): as planted"
done

echo "== 4. MoE: GPU f32 chooses the CPU f32's experts, every layer and position"
for f in mixtral qwen2-moe qwen3-moe; do
  for o in cpu_f32 gpu_f32; do
    $B/greta-run-aot "$AOT/$f-$o.so" --weights models/hf-refs/$f/checkpoint \
      --prompt models/hf-refs/prompt.json --positions all --payload full \
      --trace-dir "$WORK/moe-$f-$o" > /dev/null 2> "$WORK/moe-$f-$o.err" \
      || { echo "  $f $o failed:"; tail -3 "$WORK/moe-$f-$o.err"; }
  done
  $PY test/Target/Inputs/same_experts.py "$WORK/moe-$f-cpu_f32" "$WORK/moe-$f-gpu_f32" \
    | sed "s/^/  $f: /"
done
echo "done in $(( $(date +%s) - t0 )) s"
