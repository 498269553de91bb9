"""Compares two traces with values (payload full) row by row under
greta-diff's f32 tolerance policy (docs/DIFF.md: a row matches when its
hashes are equal, or every element is within 1e-5 + 1e-4 * |base| and the
row's MAE is at most 1e-5), for traces that greta-diff refuses to compare.

  tolerance_check.py BASE TEST

Prints the aligned rows, per stage the largest relative L2 error, and
`N rows diverge`; exits 1 when a row diverges or a row is missing.
"""
import sys

import numpy as np

import greta_trace

base, test = (greta_trace.read(p).by_key() for p in sys.argv[1:3])
if base.keys() != test.keys():
    sys.exit(f"rows differ: {len(base.keys() - test.keys())} only in base, "
             f"{len(test.keys() - base.keys())} only in test")
worst, diverging = {}, 0
for key in sorted(base, key=lambda k: (greta_trace.record_id(k[0], k[1]),
                                       k[2])):
    (sha_b, b), (sha_t, t) = base[key], test[key]
    stage = greta_trace.STAGES[key[0]]
    if sha_b == sha_t:
        worst.setdefault(stage, 0.0)
        continue
    if b is None or t is None:
        sys.exit(f"{stage} layer {key[1]} position {key[2]}: no values "
                 f"(payload full is needed)")
    b64, d = b.astype(np.float64), np.abs(t.astype(np.float64) - b)
    ok = bool(np.all(d <= 1e-5 + 1e-4 * np.abs(b64)) and d.mean() <= 1e-5)
    if not ok:
        diverging += 1
        if diverging == 1:
            print(f"first diverging row: {stage} layer {key[1]} position "
                  f"{key[2]}, MAE {d.mean():.3g}")
    rel = np.linalg.norm(d) / max(np.linalg.norm(b64), 1e-30)
    worst[stage] = max(worst.get(stage, 0.0), rel)
print(f"aligned {len(base)} rows")
for stage in greta_trace.STAGES:
    if stage in worst:
        print(f"  {stage:18s} max rel-L2 {worst[stage]:.1e}")
print(f"{diverging} rows diverge")
sys.exit(1 if diverging else 0)
