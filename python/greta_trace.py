#!/usr/bin/env python3
"""Read a GRETA trace directory (docs/TRACE_FORMAT.md) with numpy.

    import greta_trace
    t = greta_trace.read("runs/base")
    t.manifest["precision"], len(t.records), t.stop_reason
    r = t.records[0]
    r.stage, r.layer, r.position, r.sha256, r.values  # numpy array or None

Like the C++ reader, a truncated or corrupt tail is not an error: the records
before it are returned and ``stop_reason`` says where reading stopped.

CLI: ``python3 greta_trace.py DIR [--records N]`` prints a summary.
"""
import argparse
import json
import os
import struct
import sys
import zlib

import numpy as np

FORMAT_VERSION = 3          # the newest version read; versions 1 to 3 are
OLDEST_FORMAT_VERSION = 1   # read (a version-1 file has no block frames;
                            # version 3 adds the run id, after byte 16 of the
                            # header, skipped here)
FILE_MAGIC = b"GRETATRC"
FILE_HEADER_SIZE = 16
RECORD_MAGIC = 0x43455247  # b"GREC" read as little-endian u32
BLOCK_MAGIC = 0x42455247   # b"GREB": many rows of one tensor (version 2)
MAX_BODY_BYTES = 1 << 30
INT64_MAX = (1 << 63) - 1

STAGES = [
    "embed_out", "residual_pre_attn", "attn_in", "q_pre_rope", "k_pre_rope",
    "q_post_rope", "k_post_rope", "attn_out", "residual_post_attn",
    "ffn_norm_in", "mlp_out", "residual_post_mlp", "logits",
]
DTYPES = ["f32", "f64", "f16", "bf16"]
PAYLOADS = ["hash", "stats", "full"]
_NP_DTYPES = {"f32": np.dtype("<f4"), "f64": np.dtype("<f8"),
              "f16": np.dtype("<f2")}
_DTYPE_SIZES = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2}
# A block's row entry: 40 bytes for payload hash, 88 for stats and full.
_HASH_ENTRY = np.dtype([("sha256", "V32"), ("nz", "<i8")])
_STATS_ENTRY = np.dtype([("sha256", "V32"), ("nz", "<i8"), ("nan", "<i8"),
                         ("inf", "<i8"), ("min", "<f8"), ("max", "<f8"),
                         ("mean", "<f8"), ("l2", "<f8")])


class TraceError(Exception):
    """The trace cannot be read at all (missing, bad manifest, newer format)."""


class Record:
    __slots__ = ("stage", "layer", "position", "dtype", "shape", "sha256",
                 "nz_count", "nan_count", "inf_count", "min", "max", "mean",
                 "l2", "top5", "payload", "values")

    def __repr__(self):
        return (f"Record({self.stage}, layer={self.layer}, "
                f"position={self.position}, sha256={self.sha256[:12]}..)")


class Trace:
    def __init__(self, manifest, complete, records, stop_reason, valid_bytes):
        self.manifest = manifest
        self.complete = complete
        self.records = records
        self.stop_reason = stop_reason
        self.valid_bytes = valid_bytes


def _values(dtype, raw, shape):
    if dtype == "bf16":
        # numpy has no bf16: widen the 16 bits to the top half of an f32.
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        arr = u.view(np.float32)
    else:
        arr = np.frombuffer(raw, dtype=_NP_DTYPES[dtype])
    return arr.reshape(shape)


def _check_shape(shape):
    """The C++ reader's limits: no negative dimension, at most 2^48
    elements. Returns the element count."""
    elements = 1
    for d in shape:
        if d < 0:
            raise ValueError(f"negative dimension {d}")
        if d != 0 and elements > (1 << 48) // d:
            raise ValueError("shape too large (more than 2^48 elements)")
        elements *= d
    return elements


def _tags(body):
    """The four tag bytes that open a record and a block body: stage, dtype
    and payload validated (the C++ reader's messages), flags returned."""
    if len(body) < 4:
        raise ValueError("body ends inside the tag bytes")
    stage, dtype, payload, flags = struct.unpack_from("<4B", body, 0)
    if stage >= len(STAGES):
        raise ValueError(f"unknown stage {stage}")
    if dtype >= len(DTYPES):
        raise ValueError(f"unknown dtype {dtype}")
    if payload >= len(PAYLOADS):
        raise ValueError(f"unknown payload {payload}")
    return stage, dtype, payload, flags


def decode_body(body):
    """Decodes one record body; raises ValueError if malformed (with the
    C++ reader's messages)."""
    off = 0

    def take(fmt, what):
        nonlocal off
        size = struct.calcsize(fmt)
        if off + size > len(body):
            raise ValueError(f"body ends inside {what}")
        out = struct.unpack_from(fmt, body, off)
        off += size
        return out

    stage, dtype, payload, _flags = _tags(body)
    off = 4
    r = Record()
    r.stage, r.dtype, r.payload = STAGES[stage], DTYPES[dtype], PAYLOADS[payload]
    r.layer, r.position, rank = take("<qqI", "layer/position/rank")
    if rank > 8:
        raise ValueError(f"rank {rank} too large")
    r.shape = take(f"<{rank}q", "the shape") if rank else ()
    elements = _check_shape(r.shape)
    r.sha256 = bytes(take("<32s", "the sha256")[0]).hex()
    (r.nz_count, r.nan_count, r.inf_count, r.min, r.max, r.mean,
     r.l2) = take("<qqqdddd", "the counts/fingerprint")
    (ntop,) = take("<I", "the top-k count")
    if ntop > 64:
        raise ValueError(f"top-k count {ntop} too large")
    r.top5 = list(take(f"<{ntop}i", "the top-k ids")) if ntop else []
    (nvalues,) = take("<Q", "the values length")
    if nvalues != len(body) - off:
        raise ValueError(f"values length {nvalues} but "
                         f"{len(body) - off} bytes remain")
    r.values = None
    if nvalues:
        need = elements * _DTYPE_SIZES[r.dtype]
        if need != nvalues:
            raise ValueError(f"values hold {nvalues} bytes, shape and dtype "
                             f"need {need}")
        r.values = _values(r.dtype, body[off:], r.shape)
    return r


def decode_block(body):
    """Decodes one block body (format version 2) into its records, in row
    order; raises ValueError if malformed (then no record is returned)."""
    size = len(body)
    stage, dtype, payload, flags = _tags(body)
    if flags & ~1:
        raise ValueError(f"unknown block flags {flags}")
    if size < 16:
        raise ValueError("body ends inside layer/rank")
    layer, rank = struct.unpack_from("<qI", body, 4)
    if rank > 8:
        raise ValueError(f"rank {rank} too large")
    off = 16
    if off + 8 * rank > size:
        raise ValueError("body ends inside the shape")
    shape = struct.unpack_from(f"<{rank}q", body, off) if rank else ()
    off += 8 * rank
    elements = _check_shape(shape)
    if off + 4 > size:
        raise ValueError("body ends inside the row count")
    (n,) = struct.unpack_from("<I", body, off)
    off += 4
    if n == 0:
        raise ValueError("block of 0 rows")
    contiguous = bool(flags & 1)
    pos_bytes = 8 if contiguous else 8 * n
    entry = _HASH_ENTRY if PAYLOADS[payload] == "hash" else _STATS_ENTRY
    if size - off < pos_bytes:
        raise ValueError("body ends inside the positions")
    if size - off - pos_bytes < n * entry.itemsize + 4:
        raise ValueError("body ends inside the row entries")
    if contiguous:
        (first,) = struct.unpack_from("<q", body, off)
        positions = range(first, first + n)
    else:
        positions = np.frombuffer(body, "<i8", n, off).tolist()
    off += pos_bytes
    rows = np.frombuffer(body, entry, n, off)
    entries_at = off
    off += n * entry.itemsize
    (k,) = struct.unpack_from("<I", body, off)
    off += 4
    if k > 64:
        raise ValueError(f"top-k count {k} too large")
    dname = DTYPES[dtype]
    row_bytes = elements * _DTYPE_SIZES[dname] if payload == 2 else 0
    need = 4 * k * n + n * row_bytes
    if need != size - off:
        raise ValueError(f"block of {n} rows: top-k ids and values need "
                         f"{need if need < 1 << 64 else 'over 2^64'} bytes, "
                         f"{size - off} remain")
    if contiguous and first + n - 1 > INT64_MAX:
        raise ValueError(f"positions {first} + {n - 1} overflow int64")
    ids = np.frombuffer(body, "<i4", n * k, off).reshape(n, k).tolist()
    off += 4 * k * n
    stats = entry is _STATS_ENTRY
    nz = rows["nz"].tolist()
    if stats:
        cols = [rows[c].tolist() for c in ("nan", "inf", "min", "max", "mean",
                                           "l2")]
    step = entry.itemsize
    out = []
    for j in range(n):
        r = Record()
        r.stage, r.dtype, r.payload = STAGES[stage], dname, PAYLOADS[payload]
        r.layer, r.position, r.shape = layer, positions[j], shape
        at = entries_at + j * step
        r.sha256 = body[at:at + 32].hex()
        r.nz_count = nz[j]
        if stats:
            (r.nan_count, r.inf_count, r.min, r.max, r.mean,
             r.l2) = (c[j] for c in cols)
        else:
            r.nan_count = r.inf_count = 0
            r.min = r.max = r.mean = r.l2 = 0.0
        top = ids[j]
        while top and top[-1] == -1:  # the padding of a row with fewer ids
            top.pop()
        r.top5 = top
        r.values = None
        if row_bytes:
            start = off + j * row_bytes
            r.values = _values(dname, body[start:start + row_bytes], shape)
        out.append(r)
    return out


def read(path):
    """Reads the trace in directory `path`; raises TraceError when unusable."""
    if not os.path.isdir(path):
        raise TraceError(f"'{path}' is not a trace directory")
    mpath = os.path.join(path, "manifest.json")
    if not os.path.exists(mpath):
        raise TraceError(f"'{path}' has no manifest.json (not a trace?)")
    try:
        with open(mpath) as f:
            manifest = json.load(f)
    except ValueError as e:
        raise TraceError(f"'{mpath}' is not valid JSON: {e}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise TraceError(f"'{mpath}': missing or invalid 'format_version'")
    if version > FORMAT_VERSION:
        raise TraceError(f"'{mpath}': trace format version {version} is newer "
                         f"than this reader supports (version "
                         f"{FORMAT_VERSION}); update GRETA")
    rpath = os.path.join(path, "records.bin")
    with open(rpath, "rb") as f:
        data = f.read()
    if len(data) < FILE_HEADER_SIZE or data[:8] != FILE_MAGIC:
        raise TraceError(f"'{rpath}' is empty or not a GRETA trace")
    fversion, header_size = struct.unpack_from("<II", data, 8)
    if fversion > FORMAT_VERSION:
        raise TraceError(f"'{rpath}': trace format version {fversion} is newer "
                         f"than this reader supports (version "
                         f"{FORMAT_VERSION}); update GRETA")
    if fversion != version:
        raise TraceError(f"'{rpath}': format version {fversion} disagrees "
                         f"with the manifest ({version})")
    records, stop, off = [], "", header_size
    while off < len(data):
        where = f"record {len(records)} at byte {off}: "
        left = len(data) - off
        if left < 12:
            stop = where + f"truncated frame ({left} bytes left)"
            break
        magic, length = struct.unpack_from("<II", data, off)
        block = magic == BLOCK_MAGIC
        if magic != RECORD_MAGIC and not block:
            stop = where + "bad record magic"
            break
        if block and fversion < 2:
            stop = where + f"block frame in a version-{fversion} trace"
            break
        if length > MAX_BODY_BYTES:
            stop = where + f"implausible length {length}"
            break
        if left - 12 < length:
            stop = where + (f"truncated: needs {length + 12} bytes, "
                            f"{left} present")
            break
        body = data[off + 8:off + 8 + length]
        (crc,) = struct.unpack_from("<I", data, off + 8 + length)
        if crc != zlib.crc32(body):
            stop = where + "checksum mismatch"
            break
        try:
            if block:
                records.extend(decode_block(body))
            else:
                records.append(decode_body(body))
        except ValueError as e:
            stop = where + (f"malformed block body: {e}" if block
                            else f"malformed body: {e}")
            break
        off += 12 + length
    if not records:
        raise TraceError(f"trace '{path}' holds no readable record"
                         + (f" ({stop})" if stop else ""))
    return Trace(manifest, bool(manifest.get("complete", False)), records,
                 stop, off)


def stored_bytes(r):
    """The row's bytes as stored (bf16 values were widened to f32)."""
    if r.dtype == "bf16":
        return (r.values.reshape(-1).view(np.uint32) >> 16).astype("<u2").tobytes()
    return r.values.tobytes()


def verify(t):
    import hashlib
    checked = bad = 0
    for r in t.records:
        if r.values is None:
            continue
        checked += 1
        digest = hashlib.sha256(stored_bytes(r)).hexdigest()
        nz = int(np.count_nonzero(r.values))
        if digest != r.sha256 or nz != r.nz_count:
            bad += 1
            if bad <= 5:
                print(f"MISMATCH {r.stage}[L{r.layer}, p{r.position}]: "
                      f"sha256 {r.sha256[:16]}.. recorded, {digest[:16]}.. "
                      f"of the values; nz {r.nz_count} recorded, {nz} counted")
    print(f"verified {checked} records with values: {bad} mismatches")
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace_dir")
    ap.add_argument("--records", type=int, default=5,
                    help="how many records to list (default 5)")
    ap.add_argument("--json", action="store_true",
                    help="print every record as one JSON object per line")
    ap.add_argument("--verify", action="store_true",
                    help="recompute the SHA-256 and non-zero count of every "
                         "record that carries values (payload full) and "
                         "compare them with the recorded ones (e.g. digests "
                         "computed on a GPU); exit 1 on a mismatch")
    args = ap.parse_args(argv)
    try:
        t = read(args.trace_dir)
    except (TraceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.verify:
        return verify(t)
    if args.json:
        print(json.dumps({"complete": t.complete, "stop_reason": t.stop_reason,
                          "valid_bytes": t.valid_bytes, "manifest": t.manifest}))
        for r in t.records:
            d = {k: getattr(r, k) for k in Record.__slots__}
            d["shape"] = list(r.shape)
            d["values"] = None if r.values is None else r.values.tolist()
            print(json.dumps(d))
        return 0
    m = t.manifest
    print(f"trace {args.trace_dir}: format v{m['format_version']}, "
          f"{'complete' if t.complete else 'INCOMPLETE'}")
    for key in ("model", "prompt_name", "token_count", "backend", "precision",
                "pipeline", "filter", "tool_version"):
        print(f"  {key}: {m.get(key, '')}")
    print(f"  records: {len(t.records)} ({t.valid_bytes} valid bytes)")
    if t.stop_reason:
        print(f"  stopped at {t.stop_reason}")
    stages = sorted({r.stage for r in t.records}, key=STAGES.index)
    layers = sorted({r.layer for r in t.records})
    positions = sorted({r.position for r in t.records})
    print(f"  stages: {', '.join(stages)}")
    print(f"  layers: {layers[0]}..{layers[-1]} ({len(layers)})")
    print(f"  positions: {positions[0]}..{positions[-1]} ({len(positions)})")
    for r in t.records[:args.records]:
        extra = f" top5={r.top5}" if r.top5 else ""
        if r.payload != "hash":
            extra += f" min={r.min:.6g} max={r.max:.6g} l2={r.l2:.6g}"
        print(f"  {r.stage}[L{r.layer}, p{r.position}] {r.dtype}"
              f"{list(r.shape)} sha256={r.sha256[:16]} nz={r.nz_count}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
