#!/usr/bin/env python3
"""The numpy baseline of bench/diff: the same per-row work as greta-diff's
tolerance policy on two traces (read records.bin, check each frame's CRC,
align rows by (stage, layer, position), skip rows whose SHA-256 match, and
for the others MAE, max-abs and allclose), timed the same way. Like
greta-diff it maps records.bin instead of reading it into memory: with
f.read the copy cost this script about twice its read time.

Usage: numpy_diff.py BASE TEST [--rtol R] [--atol A]
Prints one line: read_s=... compare_s=... bytes_compared=... rows_compared=...
"""
import argparse
import mmap
import struct
import sys
import time
import zlib

import numpy as np

HEADER = 16
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16}


def read_trace(path):
    """Returns {(stage, layer, position): (sha256 bytes, values ndarray)}."""
    with open(path + "/records.bin", "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if data[:8] != b"GRETATRC":
        sys.exit(f"{path}: not a GRETA trace")
    rows = {}
    off = HEADER
    mv = memoryview(data)
    while off + 12 <= len(data):
        magic, length = struct.unpack_from("<II", data, off)
        body = mv[off + 8: off + 8 + length]
        (crc,) = struct.unpack_from("<I", data, off + 8 + length)
        if magic == 0x42455247:
            # Block frames (format version 2): this baseline times the
            # per-row records that bench/diff's generator writes.
            sys.exit(f"{path}: block frame at byte {off}: numpy_diff.py "
                     "reads record frames only (greta-trace-gen traces)")
        if magic != 0x43455247 or zlib.crc32(body) != crc:
            break
        stage, dtype, payload = body[0], body[1], body[2]
        layer, position, rank = struct.unpack_from("<qqI", body, 4)
        p = 24 + 8 * rank
        sha = bytes(body[p: p + 32])
        p += 32 + 3 * 8 + 4 * 8
        (ntop,) = struct.unpack_from("<I", body, p)
        p += 4 + 4 * ntop
        (nbytes,) = struct.unpack_from("<Q", body, p)
        p += 8
        values = np.frombuffer(body[p: p + nbytes], dtype=DTYPES[dtype])
        rows[(stage, layer, position)] = (sha, values)
        off += 12 + length
    return rows


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
    compared = nbytes = diverging = 0
    for key in sorted(base.keys() & test.keys(), key=lambda k: (k[1] * 16 + k[0], k[2])):
        sb, vb = base[key]
        st, vt = test[key]
        if sb == st:
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
          f"rows_compared={compared} diverging={diverging}",
          file=sys.stderr if a.stderr else sys.stdout)


if __name__ == "__main__":
    main()
