"""Checks the trace of Inputs/slices.mlir (default) or, with --by-position,
of Inputs/position-slices.mlir: residual_pre_attn is embed_out edited as the
model writes it."""
import sys

import numpy as np

import greta_trace

by_position = "--by-position" in sys.argv[2:]
t = greta_trace.read(sys.argv[1])
pos, emb = t.values("embed_out", 0)
pos2, res = t.values("residual_pre_attn", 0)
if not np.array_equal(pos, pos2):
    sys.exit(f"positions differ: {pos} vs {pos2}")
n = len(pos)
want = emb.astype(np.float32).copy()
if by_position:  # rows at positions >= 3 doubled, then 5, 6, 7 tripled
    want[pos >= 3] *= np.float32(2)
    want[(pos >= 5) & (pos < 8)] *= np.float32(3)
else:  # rows from 3 on doubled, the last two plus 1
    want[3:] *= np.float32(2)
    want[n - 2:] += np.float32(1)
for p in range(n):
    if not np.array_equal(res[p], want[p]):
        sys.exit(f"position {pos[p]}: residual_pre_attn is not the edit of "
                 f"embed_out")
print(f"{n} rows edited as written")
