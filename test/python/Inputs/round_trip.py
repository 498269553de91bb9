"""Write -> read with the Python package, then traces for greta-diff.

  round_trip.py WORK_DIR

Writes WORK_DIR/rt (every payload, dtype and frame kind, logits with top-5
ids) and checks that greta_trace.read gives back the rows, digests and
manifest; then writes WORK_DIR/base and WORK_DIR/test, the trace of a
synthetic 4-layer run and the same run with a fault planted at
(attn_out, layer 2, from position 5) that propagates downstream as a real
fault does, and WORK_DIR/same, a second clean run. greta-diff (the C++
reader) then compares them in the lit test.
"""
import hashlib
import os
import sys

import numpy as np

import greta_trace
from greta_trace import STAGES

work = sys.argv[1]
TOKENS = 8
rng = np.random.default_rng(3)


def check(cond, what):
    if not cond:
        sys.exit(f"round trip: {what}")


# 1. Every kind of row, read back.
x32 = rng.standard_normal((TOKENS, 16)).astype(np.float32)
x64 = rng.standard_normal((TOKENS, 8))
x16 = rng.standard_normal((TOKENS, 12)).astype(np.float16)
logits = rng.standard_normal((TOKENS, 50)).astype(np.float32)
path = os.path.join(work, "rt")
with greta_trace.Writer(path, token_count=TOKENS, model="m",
                        filter=greta_trace.Filter(),
                        prompt_digest=greta_trace.prompt_digest(range(TOKENS)),
                        overwrite=True) as w:
    check(w.tensor("attn_out", 0, x32, payload="full") == TOKENS, "rows")
    w.tensor("mlp_out", 0, x64, payload="stats")
    w.tensor("q_pre_rope", 1, x16, positions=[0, 2, 4, 6, 1, 3, 5, 7],
             payload="full")
    w.tensor("logits", 1, logits, payload="hash")
    w.record("k_post_rope", 1, 3, x32[3], payload="full")
t = greta_trace.read(path)
check(t.complete and not t.stop_reason, "complete, read to the end")
check(len(t) == 4 * TOKENS + 1 == t.manifest["records"], "record count")
check(t.manifest["prompt_digest"] == hashlib.sha256(
    np.arange(TOKENS, dtype="<i8").tobytes()).hexdigest(), "prompt digest")
pos, rows = t.values("attn_out", 0)
check(np.array_equal(pos, np.arange(TOKENS)) and np.array_equal(rows, x32),
      "f32 values")
pos, rows = t.values("q_pre_rope", 1)
check(pos.tolist() == [0, 2, 4, 6, 1, 3, 5, 7] and
      np.array_equal(rows, x16), "f16 values, positions in row order")
tab = t.table()
mlp = tab[tab["stage"] == "mlp_out"]
check(np.allclose(mlp["l2"], np.linalg.norm(x64, axis=1), rtol=1e-12),
      "stats l2")
check(np.array_equal(mlp["min"], x64.min(axis=1)), "stats min")
check(all(r.sha256 == hashlib.sha256(x64[i].tobytes()).hexdigest()
          for i, r in enumerate(t.records[TOKENS:2 * TOKENS])), "sha256")
top = tab[tab["stage"] == "logits"]["top5"]
check(np.array_equal(top, np.argsort(-logits, axis=1)[:, :5]), "top-5")
single = [r for r in t.records if r.stage == "k_post_rope"]
check(len(single) == 1 and single[0].position == 3 and
      np.array_equal(single[0].values, x32[3]), "record frame")
print(f"read back {len(t)} records in {len(t.frames)} frames: ok")


# 2. A synthetic run, clean and with a planted fault.
def run(name, plant):
    ids = list(range(100, 100 + TOKENS))
    with greta_trace.Writer(os.path.join(work, name), token_count=TOKENS,
                            model="synthetic", model_digest="m" * 64,
                            weights_digest="w" * 64, prompt_name="p_py",
                            prompt_digest=greta_trace.prompt_digest(ids),
                            backend="numpy", precision="f32",
                            tool_version="round_trip.py",
                            payload="full", overwrite=True) as w:
        for layer in range(4):
            for s, stage in enumerate(STAGES):
                if (stage == "embed_out" and layer) or (
                        stage == "logits" and layer != 3):
                    continue
                g = np.random.default_rng(layer * 16 + s)
                rows = g.standard_normal((TOKENS, 32)).astype(np.float32)
                # Downstream in execution order (v_proj, appended to the
                # stage table, runs before attn_out).
                if plant and greta_trace.execution_order_key(
                        stage, layer) >= greta_trace.execution_order_key(
                            "attn_out", 2):
                    rows[5:] *= np.float32(1.01)
                w.tensor(stage, layer, rows)


run("base", False)
run("same", False)
run("test", True)
print("wrote base, same, test")
