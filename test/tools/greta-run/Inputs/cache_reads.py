"""Checks a trace of greta-run --trace-cache-reads --payload full: every
row of every k_cache_read / v_cache_read record (the cache rows [0, p] a
query at p read) equals the k_cache / v_cache record of that row (what was
written there). Prints what it checked; exit 1 naming the first mismatch."""
import os
import sys

import numpy as np

# The greta_trace package of this checkout.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "..", "python"))
import greta_trace  # noqa: E402

trace = greta_trace.read(sys.argv[1])
writes = {}
reads = []
for r in trace.records:
    if r.stage in ("k_cache", "v_cache"):
        writes[(r.stage, r.layer, r.position)] = np.asarray(r.values)
    elif r.stage in ("k_cache_read", "v_cache_read"):
        reads.append(r)
rows = 0
for r in reads:
    stage = r.stage[:-len("_read")]
    values = np.asarray(r.values).reshape(r.shape)
    for j in range(r.shape[0]):
        w = writes.get((stage, r.layer, j))
        if w is None:
            sys.exit(f"{r.stage} layer {r.layer} position {r.position}: row "
                     f"{j} has no {stage} record")
        if values[j].tobytes() != w.tobytes():
            sys.exit(f"{r.stage} layer {r.layer} position {r.position}: row "
                     f"{j} differs from its {stage} write")
        rows += 1
print(f"{len(reads)} cache reads of {rows} rows, {len(writes)} writes: "
      f"every read equals its write" if reads else "no cache reads")
