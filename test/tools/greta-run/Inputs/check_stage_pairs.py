"""Checks a trace (greta_trace.py --json lines on stdin) for the stages that
name one value: residual_pre_attn of layer L+1 is residual_post_mlp of
layer L, and residual_pre_attn of layer 0 is embed_out. Every such pair must
carry the same digest and values at every position, and every pair the
model has must be present. Prints one summary line."""
import json
import sys

records = {}
for line in sys.stdin:
    d = json.loads(line)
    if "stage" in d:
        records[(d["stage"], d["layer"], d["position"])] = d

pairs = 0
for (stage, layer, pos), r in records.items():
    if stage != "residual_pre_attn":
        continue
    twin = ("embed_out", 0, pos) if layer == 0 else (
        "residual_post_mlp", layer - 1, pos)
    if twin not in records:
        sys.exit(f"residual_pre_attn layer {layer} position {pos}: no {twin}")
    t = records[twin]
    for key in ("sha256", "nz_count", "values", "l2"):
        if r.get(key) != t.get(key):
            sys.exit(f"residual_pre_attn layer {layer} position {pos}: "
                     f"{key} differs from {twin[0]} layer {twin[1]}")
    pairs += 1
print(f"stage pairs equal: {pairs}")
