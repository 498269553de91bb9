#!/usr/bin/env python3
"""The numpy baseline of bench/diff: the same per-row work as greta-diff's
tolerance policy on two traces (read records.bin, check each frame's CRC,
align rows by (stage, layer, position), skip rows whose SHA-256 match, and
for the others MAE, max-abs and allclose), timed the same way.

Traces are read by the greta_trace package (python/, docs/PYTHON.md), which
maps records.bin instead of reading it into memory and decodes both frame
kinds of docs/TRACE_FORMAT.md, checking every CRC. A row without values on
a side (payload hash or stats) whose SHA-256 differs counts as diverging
without a numeric comparison, as in greta-diff's tolerance policy
(hash_only=...).

Usage: numpy_diff.py BASE TEST [--rtol R] [--atol A]
Prints one line: read_s=... compare_s=... bytes_compared=... rows_compared=...
"""
import argparse
import os
import sys
import time

import numpy as np

# The package from this checkout unless one is installed.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "..", "..", "python"))
import greta_trace  # noqa: E402


def read_trace(path):
    """Returns {(stage, layer, position): (sha256 bytes, values ndarray)}."""
    try:
        return greta_trace.read(path).by_key()
    except greta_trace.TraceError as e:
        sys.exit(f"{path}: {e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("test")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--stderr", action="store_true", help="print to stderr")
    a = ap.parse_args()
    t0 = time.perf_counter()
    base, test = read_trace(a.base), read_trace(a.test)
    t1 = time.perf_counter()
    compared = nbytes = diverging = hash_only = 0
    for key in sorted(base.keys() & test.keys(), key=lambda k: (k[1] * 16 + k[0], k[2])):
        sb, vb = base[key]
        st, vt = test[key]
        if sb == st:
            continue
        if vb is None or vt is None or vb.shape != vt.shape:
            hash_only += 1  # no values to compare: the hash decides
            diverging += 1
            continue
        d = np.abs(vt.astype(np.float64) - vb)
        mae = d.mean()
        maxabs = d.max()
        close = np.allclose(vt, vb, rtol=a.rtol, atol=a.atol)
        compared += 1
        nbytes += vb.nbytes + vt.nbytes
        diverging += (not close) or mae > a.atol
    t2 = time.perf_counter()
    print(f"read_s={t1 - t0:.3f} compare_s={t2 - t1:.3f} bytes_compared={nbytes} "
          f"rows_compared={compared} diverging={diverging} "
          f"hash_only={hash_only} rows_base={len(base)} rows_test={len(test)}",
          file=sys.stderr if a.stderr else sys.stdout)


if __name__ == "__main__":
    main()
