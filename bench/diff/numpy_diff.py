#!/usr/bin/env python3
"""The numpy baseline of bench/diff: the same per-row work as greta-diff's
tolerance policy on two traces (read records.bin, check each frame's CRC,
align rows by (stage, layer, position), skip rows whose SHA-256 match, and
for the others MAE, max-abs and allclose), timed the same way. Like
greta-diff it maps records.bin instead of reading it into memory: with
f.read the copy cost this script about twice its read time.

Reads both frame kinds of docs/TRACE_FORMAT.md: record frames (one row) and
block frames (format version 2: many rows of one tensor, each row an entry
of 40 bytes for payload hash or 88 for stats/full, the values after the
ids). A row without values on a side (payload hash or stats) whose SHA-256
differs counts as diverging without a numeric comparison, as in
greta-diff's tolerance policy (hash_only=...).

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

RECORD_MAGIC = 0x43455247  # "GREC"
BLOCK_MAGIC = 0x42455247   # "GREB"
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: "bf16"}
DTYPE_SIZE = {0: 4, 1: 8, 2: 2, 3: 2}


def as_array(buf, dtype):
    """The row's values as an ndarray (bf16 widened to f32); None if empty."""
    if len(buf) == 0:
        return None
    if DTYPES[dtype] == "bf16":
        u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32)
    return np.frombuffer(buf, dtype=DTYPES[dtype])


def read_block(body, rows):
    """Adds a block frame's rows to `rows`; False if the body is malformed."""
    stage, dtype, payload, flags = body[0], body[1], body[2], body[3]
    if flags & ~1 or dtype not in DTYPES or payload > 2:
        return False
    layer, rank = struct.unpack_from("<qI", body, 4)
    p = 16
    elements = 1
    for d in struct.unpack_from(f"<{rank}q", body, p):
        elements *= d
    p += 8 * rank
    (n,) = struct.unpack_from("<I", body, p)
    p += 4
    if flags & 1:  # contiguous: the first position only
        (first,) = struct.unpack_from("<q", body, p)
        positions = range(first, first + n)
        p += 8
    else:
        positions = struct.unpack_from(f"<{n}q", body, p)
        p += 8 * n
    entry = 40 if payload == 0 else 88  # BlockRow: sha256, nz_count [, stats]
    entries = p
    p += entry * n
    (k,) = struct.unpack_from("<I", body, p)
    p += 4 + 4 * k * n
    row_bytes = elements * DTYPE_SIZE[dtype] if payload == 2 else 0
    if p + row_bytes * n != len(body):
        return False
    for j, position in enumerate(positions):
        e = entries + j * entry
        sha = bytes(body[e: e + 32])
        v = p + j * row_bytes
        rows[(stage, layer, position)] = (sha, as_array(body[v: v + row_bytes], dtype))
    return True


def read_trace(path):
    """Returns {(stage, layer, position): (sha256 bytes, values ndarray)}."""
    with open(path + "/records.bin", "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if data[:8] != b"GRETATRC":
        sys.exit(f"{path}: not a GRETA trace")
    rows = {}
    off = struct.unpack_from("<I", data, 12)[0]  # header size (16, or 32 from v3)
    mv = memoryview(data)
    while off + 12 <= len(data):
        magic, length = struct.unpack_from("<II", data, off)
        if off + 12 + length > len(data):
            break  # truncated tail
        body = mv[off + 8: off + 8 + length]
        (crc,) = struct.unpack_from("<I", data, off + 8 + length)
        if magic not in (RECORD_MAGIC, BLOCK_MAGIC) or zlib.crc32(body) != crc:
            break
        if magic == BLOCK_MAGIC:
            # All or nothing, like the C++ reader: a bad block ends the read.
            try:
                ok = read_block(body, rows)
            except (struct.error, KeyError):
                ok = False
            if not ok:
                break
            off += 12 + length
            continue
        stage, dtype, payload = body[0], body[1], body[2]
        layer, position, rank = struct.unpack_from("<qqI", body, 4)
        p = 24 + 8 * rank
        sha = bytes(body[p: p + 32])
        p += 32 + 3 * 8 + 4 * 8
        (ntop,) = struct.unpack_from("<I", body, p)
        p += 4 + 4 * ntop
        (nbytes,) = struct.unpack_from("<Q", body, p)
        p += 8
        values = as_array(body[p: p + nbytes], dtype)
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
    compared = nbytes = diverging = hash_only = 0
    for key in sorted(base.keys() & test.keys(), key=lambda k: (k[1] * 16 + k[0], k[2])):
        sb, vb = base[key]
        st, vt = test[key]
        if sb == st:
            continue
        if vb is None or vt is None or vb.size != vt.size:
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
