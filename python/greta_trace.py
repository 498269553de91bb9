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

FORMAT_VERSION = 1
FILE_MAGIC = b"GRETATRC"
FILE_HEADER_SIZE = 16
RECORD_MAGIC = 0x43455247  # b"GREC" read as little-endian u32
MAX_BODY_BYTES = 1 << 30

STAGES = [
    "embed_out", "residual_pre_attn", "attn_in", "q_pre_rope", "k_pre_rope",
    "q_post_rope", "k_post_rope", "attn_out", "residual_post_attn",
    "ffn_norm_in", "mlp_out", "residual_post_mlp", "logits",
]
DTYPES = ["f32", "f64", "f16", "bf16"]
PAYLOADS = ["hash", "stats", "full"]
_NP_DTYPES = {"f32": np.dtype("<f4"), "f64": np.dtype("<f8"),
              "f16": np.dtype("<f2")}


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


def decode_body(body):
    """Decodes one version-1 record body; raises ValueError if malformed."""
    off = 0

    def take(fmt):
        nonlocal off
        size = struct.calcsize(fmt)
        if off + size > len(body):
            raise ValueError("body ends early")
        out = struct.unpack_from(fmt, body, off)
        off += size
        return out

    stage, dtype, payload, _flags = take("<4B")
    if stage >= len(STAGES):
        raise ValueError(f"unknown stage {stage}")
    if dtype >= len(DTYPES):
        raise ValueError(f"unknown dtype {dtype}")
    if payload >= len(PAYLOADS):
        raise ValueError(f"unknown payload {payload}")
    r = Record()
    r.stage, r.dtype, r.payload = STAGES[stage], DTYPES[dtype], PAYLOADS[payload]
    r.layer, r.position, rank = take("<qqI")
    if rank > 8:
        raise ValueError(f"rank {rank} too large")
    r.shape = take(f"<{rank}q") if rank else ()
    r.sha256 = bytes(take("<32s")[0]).hex()
    (r.nz_count, r.nan_count, r.inf_count, r.min, r.max, r.mean,
     r.l2) = take("<qqqdddd")
    (ntop,) = take("<I")
    if ntop > 64:
        raise ValueError(f"top-k count {ntop} too large")
    r.top5 = list(take(f"<{ntop}i")) if ntop else []
    (nvalues,) = take("<Q")
    if nvalues != len(body) - off:
        raise ValueError(f"values length {nvalues} but "
                         f"{len(body) - off} bytes remain")
    r.values = None
    if nvalues:
        elems = int(np.prod(r.shape)) if r.shape else 1
        size = 2 if r.dtype in ("f16", "bf16") else (4 if r.dtype == "f32" else 8)
        if elems * size != nvalues:
            raise ValueError("values do not match shape and dtype")
        r.values = _values(r.dtype, body[off:], r.shape)
    return r


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
        if magic != RECORD_MAGIC:
            stop = where + "bad record magic"
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
            records.append(decode_body(body))
        except ValueError as e:
            stop = where + f"malformed body: {e}"
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
