#!/usr/bin/env bash
# The main job: a bisection on the CPU. llama-tiny (12 layers) gets random
# weights; the test configuration plants a fault in the MLP output of layer 6
# from token 700 on; greta-bisect finds it without being told where.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/bin
W=build/demo
mkdir -p "$W"
[ -f "$W/llama-tiny.safetensors" ] ||
  $B/greta-translate --gen-random-weights models/llama-tiny/config.json --seed 0 \
    -o "$W/llama-tiny.safetensors"
set +e
$B/greta-bisect --model models/llama-tiny/model.mlir \
  --weights "$W/llama-tiny.safetensors" --prompt models/prompts/p6_len_16.json \
  --base "" \
  --test "--pass-pipeline='greta-inject-fault{stage=mlp_out layer=6 from-position=700 kind=scale magnitude=1.01}'" \
  --work-dir "$W/bisect" --restart
rc=$?
set -e
# 1 = divergence found, which is what the demo plants.
[ $rc -eq 1 ] || { echo "demo: expected a divergence (exit 1), got exit $rc" >&2; exit 1; }
