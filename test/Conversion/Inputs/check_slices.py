"""Checks the trace of Inputs/slices.mlir: residual_pre_attn is embed_out
with rows from position 3 on doubled and the last two rows plus 1."""
import sys

import numpy as np

import greta_trace

t = greta_trace.read(sys.argv[1])
pos, emb = t.values("embed_out", 0)
pos2, res = t.values("residual_pre_attn", 0)
if not np.array_equal(pos, pos2):
    sys.exit(f"positions differ: {pos} vs {pos2}")
n = len(pos)
want = emb.astype(np.float32).copy()
want[3:] *= np.float32(2)
want[n - 2:] += np.float32(1)
for p in range(n):
    if not np.array_equal(res[p], want[p]):
        sys.exit(f"position {p}: residual_pre_attn is not the edit of "
                 f"embed_out")
print(f"{n} rows edited as written")
