"""Reads a GRETA trace directory (docs/TRACE_FORMAT.md) into numpy.

    t = greta_trace.read("runs/base")
    t.manifest["precision"], len(t), t.stop_reason
    r = t.records[0]
    r.stage, r.layer, r.position, r.sha256, r.values  # numpy array or None
    tab = t.table()                  # one row per record, numpy columns
    positions, rows = t.values("mlp_out", 6)

Like the C++ reader, a truncated or corrupt tail is not an error: the records
before it are returned and ``stop_reason`` says where reading stopped; the
messages are the C++ reader's. records.bin is memory-mapped: values are
read-only views into it (bf16 rows, widened to f32, are copies).
"""
import hashlib
import json
import mmap
import os
import struct
import zlib

import numpy as np

from .format import (BLOCK_CONTIGUOUS, BLOCK_MAGIC, DTYPE_SIZES, DTYPES,
                     FILE_HEADER_SIZE, FILE_MAGIC, FORMAT_VERSION, HASH_ENTRY,
                     INT64_MAX, MAX_BODY_BYTES, MAX_RANK, MAX_TOP,
                     OLD_FILE_HEADER_SIZE, PAYLOADS, RECORD_MAGIC,
                     RUN_ID_BYTES, RUN_ID_OFFSET, STAGES, STATS_ENTRY,
                     STORED_DTYPES, stage_index)


class TraceError(Exception):
    """The trace cannot be read at all (missing, bad manifest, newer format)."""


class Record:
    """One traced row: stage (name), layer, position, dtype and payload
    (names), shape, sha256 (hex; digest: its 32 bytes), nz/nan/inf counts,
    the fingerprint (min,
    max, mean, l2), top5 (a list of token ids) and values (None unless the
    payload is full)."""
    __slots__ = ("stage", "layer", "position", "dtype", "shape", "digest",
                 "nz_count", "nan_count", "inf_count", "min", "max", "mean",
                 "l2", "top5", "payload", "values")
    # The fields, as --json prints them.
    FIELDS = ("stage", "layer", "position", "dtype", "shape", "sha256",
              "nz_count", "nan_count", "inf_count", "min", "max", "mean", "l2",
              "top5", "payload", "values")

    @property
    def sha256(self):
        """The SHA-256 as hex (`digest` holds its 32 bytes)."""
        return self.digest.hex()

    def __repr__(self):
        return (f"Record({self.stage}, layer={self.layer}, "
                f"position={self.position}, sha256={self.sha256[:12]}..)")


class Block:
    """The rows of one block frame, as numpy arrays into the file: stage,
    dtype and payload (names), layer, shape (of one row), positions (n
    int64), entries (n structured rows: sha256, nz and, unless the payload
    is hash, nan, inf, min, max, mean, l2), top_ids (n x k int32, -1
    padded) and values (n x shape, or None)."""
    __slots__ = ("stage", "layer", "dtype", "payload", "shape", "positions",
                 "entries", "top_ids", "values")

    def __len__(self):
        return len(self.positions)

    def record(self, j):
        """Row j as a Record, exactly as the C++ reader expands it."""
        r = Record()
        r.stage, r.dtype, r.payload = self.stage, self.dtype, self.payload
        r.layer, r.position, r.shape = (self.layer, int(self.positions[j]),
                                        self.shape)
        e = self.entries[j]
        r.digest = e["sha256"].tobytes()
        r.nz_count = int(e["nz"])
        if self.entries.dtype == STATS_ENTRY:
            r.nan_count, r.inf_count = int(e["nan"]), int(e["inf"])
            r.min, r.max = float(e["min"]), float(e["max"])
            r.mean, r.l2 = float(e["mean"]), float(e["l2"])
        else:
            r.nan_count = r.inf_count = 0
            r.min = r.max = r.mean = r.l2 = 0.0
        top = self.top_ids[j].tolist()
        while top and top[-1] == -1:  # the padding of a row with fewer ids
            top.pop()
        r.top5 = top
        r.values = None if self.values is None else self.values[j]
        return r


def _values(dtype, raw, shape):
    """The stored bytes as an array of `shape`; bf16 widened to f32."""
    arr = np.frombuffer(raw, dtype=STORED_DTYPES[dtype])
    if dtype == "bf16":
        # numpy has no bf16: the 16 bits become the top half of an f32.
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr if len(shape) == 1 else arr.reshape(shape)


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


_RECORD_HEAD = struct.Struct("<4BqqI")  # tags, layer, position, rank
# By rank: the shape, sha256, counts, fingerprint and top-k count.
_RECORD_MIDDLE = [struct.Struct(f"<{r}q32sqqqddddI")
                  for r in range(MAX_RANK + 1)]
# By top-k count: the ids and the values length.
_RECORD_TAIL = [struct.Struct(f"<{k}iQ") for k in range(MAX_TOP + 1)]


def decode_body(body):
    """Decodes one record body into a Record; raises ValueError if
    malformed (with the C++ reader's messages)."""
    # Three whole-struct reads for a well-formed body; anything unusual is
    # decoded again field by field for the exact message.
    try:
        stage, dtype, payload, _, layer, position, rank = \
            _RECORD_HEAD.unpack_from(body)
        if stage < len(STAGES) and dtype < len(DTYPES) and \
                payload < len(PAYLOADS) and rank <= MAX_RANK:
            middle = _RECORD_MIDDLE[rank]
            fields = middle.unpack_from(body, 24)
            ntop = fields[-1]
            if ntop <= MAX_TOP:
                off = 24 + middle.size
                tail = _RECORD_TAIL[ntop]
                *top, nvalues = tail.unpack_from(body, off)
                off += tail.size
                shape = fields[:rank]
                dname = DTYPES[dtype]
                elements = _check_shape(shape)
                if nvalues == len(body) - off and nvalues in (
                        0, elements * DTYPE_SIZES[dname]):
                    r = Record()
                    r.stage, r.dtype, r.payload = (STAGES[stage], dname,
                                                   PAYLOADS[payload])
                    r.layer, r.position, r.shape = layer, position, shape
                    (r.digest, r.nz_count, r.nan_count, r.inf_count, r.min,
                     r.max, r.mean, r.l2) = fields[rank:-1]
                    r.top5 = top
                    r.values = (_values(dname, body[off:], shape)
                                if nvalues else None)
                    return r
    except (struct.error, ValueError):
        pass
    return _decode_body_checked(body)


def _decode_body_checked(body):
    """decode_body field by field, each read checked."""
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
    if rank > MAX_RANK:
        raise ValueError(f"rank {rank} too large")
    r.shape = take(f"<{rank}q", "the shape") if rank else ()
    elements = _check_shape(r.shape)
    r.digest = bytes(take("<32s", "the sha256")[0])
    (r.nz_count, r.nan_count, r.inf_count, r.min, r.max, r.mean,
     r.l2) = take("<qqqdddd", "the counts/fingerprint")
    (ntop,) = take("<I", "the top-k count")
    if ntop > MAX_TOP:
        raise ValueError(f"top-k count {ntop} too large")
    r.top5 = list(take(f"<{ntop}i", "the top-k ids")) if ntop else []
    (nvalues,) = take("<Q", "the values length")
    if nvalues != len(body) - off:
        raise ValueError(f"values length {nvalues} but "
                         f"{len(body) - off} bytes remain")
    r.values = None
    if nvalues:
        need = elements * DTYPE_SIZES[r.dtype]
        if need != nvalues:
            raise ValueError(f"values hold {nvalues} bytes, shape and dtype "
                             f"need {need}")
        r.values = _values(r.dtype, body[off:], r.shape)
    return r


def decode_block(body):
    """Decodes one block body (format version 2) into a Block; raises
    ValueError if malformed (then no row of it is read)."""
    size = len(body)
    stage, dtype, payload, flags = _tags(body)
    if flags & ~BLOCK_CONTIGUOUS:
        raise ValueError(f"unknown block flags {flags}")
    if size < 16:
        raise ValueError("body ends inside layer/rank")
    layer, rank = struct.unpack_from("<qI", body, 4)
    if rank > MAX_RANK:
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
    contiguous = bool(flags & BLOCK_CONTIGUOUS)
    pos_bytes = 8 if contiguous else 8 * n
    entry = HASH_ENTRY if PAYLOADS[payload] == "hash" else STATS_ENTRY
    if size - off < pos_bytes:
        raise ValueError("body ends inside the positions")
    if size - off - pos_bytes < n * entry.itemsize + 4:
        raise ValueError("body ends inside the row entries")
    if contiguous:
        (first,) = struct.unpack_from("<q", body, off)
    else:
        positions = np.frombuffer(body, "<i8", n, off)
    off += pos_bytes
    entries = np.frombuffer(body, entry, n, off)
    off += n * entry.itemsize
    (k,) = struct.unpack_from("<I", body, off)
    off += 4
    if k > MAX_TOP:
        raise ValueError(f"top-k count {k} too large")
    dname = DTYPES[dtype]
    row_bytes = elements * DTYPE_SIZES[dname] if payload == 2 else 0
    need = 4 * k * n + n * row_bytes
    if need != size - off:
        raise ValueError(f"block of {n} rows: top-k ids and values need "
                         f"{need if need < 1 << 64 else 'over 2^64'} bytes, "
                         f"{size - off} remain")
    if contiguous:
        if first + n - 1 > INT64_MAX:
            raise ValueError(f"positions {first} + {n - 1} overflow int64")
        positions = np.arange(first, first + n, dtype=np.int64)
    b = Block()
    b.stage, b.dtype, b.payload = STAGES[stage], dname, PAYLOADS[payload]
    b.layer, b.shape, b.positions, b.entries = layer, shape, positions, entries
    b.top_ids = np.frombuffer(body, "<i4", n * k, off).reshape(n, k)
    off += 4 * k * n
    b.values = (_values(dname, body[off:], (n,) + tuple(shape))
                if row_bytes else None)
    return b


class Trace:
    """A trace as read: manifest (dict), complete, stop_reason (empty when
    read to a clean end), valid_bytes, and its frames in file order (a
    Record for a record frame, a Block for a block frame)."""

    def __init__(self, path, manifest, frames, stop_reason, valid_bytes):
        self.path = path
        self.manifest = manifest
        self.complete = bool(manifest.get("complete", False))
        self.frames = frames
        self.stop_reason = stop_reason
        self.valid_bytes = valid_bytes
        self._records = None

    def __len__(self):
        return sum(len(f) if isinstance(f, Block) else 1 for f in self.frames)

    @property
    def records(self):
        """Every row as a Record, in file order (built on first use)."""
        if self._records is None:
            out = []
            for f in self.frames:
                if isinstance(f, Block):
                    out.extend(f.record(j) for j in range(len(f)))
                else:
                    out.append(f)
            self._records = out
        return self._records

    def table(self):
        """One row per record, in file order, as a numpy structured array
        (no pandas): stage, dtype, payload (str), layer, position,
        nz_count, nan_count, inf_count, min, max, mean, l2, sha256 (hex,
        bytes) and, when some record has top-k ids, top5 (k ids, -1
        padded). Select with masks: tab[tab["stage"] == "mlp_out"]."""
        return _table(self.frames)

    def by_key(self):
        """{(stage index, layer, position): (sha256 as 32 bytes, values or
        None)}: the rows keyed as greta-diff aligns them (a later row of
        the same key replaces an earlier one)."""
        out = {}
        for f in self.frames:
            s = STAGES.index(f.stage)
            if isinstance(f, Block):
                shas = f.entries["sha256"]
                values = f.values
                for j, p in enumerate(f.positions.tolist()):
                    out[(s, f.layer, p)] = (shas[j].tobytes(), None if values
                                            is None else values[j])
            else:
                out[(s, f.layer, f.position)] = (f.digest, f.values)
        return out

    def values(self, stage, layer):
        """(positions, rows): the records of (stage, layer) that carry
        values, in file order, as an int64 array and an array of one row
        per position. ValueError when there is none."""
        name = STAGES[stage_index(stage)]
        positions, rows = [], []
        for f in self.frames:
            if f.stage != name or f.layer != layer or f.values is None:
                continue
            if isinstance(f, Block):
                positions.append(f.positions)
                rows.append(f.values)
            else:
                positions.append(np.array([f.position], dtype=np.int64))
                rows.append(f.values[np.newaxis])
        if not rows:
            raise ValueError(f"trace '{self.path}' has no record {name} "
                             f"layer {layer} with values (trace it with "
                             f"payload full)")
        return np.concatenate(positions), np.concatenate(rows)


_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def _table(frames):
    k = max([f.top_ids.shape[1] if isinstance(f, Block) else len(f.top5)
             for f in frames] + [0])
    fields = [("stage", "U18"), ("layer", "<i8"), ("position", "<i8"),
              ("dtype", "U4"), ("payload", "U5"), ("nz_count", "<i8"),
              ("nan_count", "<i8"), ("inf_count", "<i8"), ("min", "<f8"),
              ("max", "<f8"), ("mean", "<f8"), ("l2", "<f8"),
              ("sha256", "S64")]
    if k:
        fields.append(("top5", "<i4", (k,)))
    n = sum(len(f) if isinstance(f, Block) else 1 for f in frames)
    tab = np.zeros(n, dtype=fields)
    at = 0
    for f in frames:
        if not isinstance(f, Block):
            row = tab[at]
            for name in ("stage", "layer", "position", "dtype", "payload",
                         "nz_count", "nan_count", "inf_count", "min", "max",
                         "mean", "l2"):
                row[name] = getattr(f, name)
            row["sha256"] = f.sha256.encode()
            if k:
                row["top5"] = f.top5 + [-1] * (k - len(f.top5))
            at += 1
            continue
        part = tab[at:at + len(f)]
        part["stage"], part["dtype"], part["payload"] = (f.stage, f.dtype,
                                                         f.payload)
        part["layer"], part["position"] = f.layer, f.positions
        e = f.entries
        part["nz_count"] = e["nz"]
        if e.dtype == STATS_ENTRY:
            for src, dst in (("nan", "nan_count"), ("inf", "inf_count"),
                             ("min", "min"), ("max", "max"), ("mean", "mean"),
                             ("l2", "l2")):
                part[dst] = e[src]
        digests = np.frombuffer(e["sha256"].tobytes(), np.uint8)
        part["sha256"] = _HEX[digests].view("S64")
        if k:
            part["top5"] = -1
            part["top5"][:, :f.top_ids.shape[1]] = f.top_ids
        at += len(f)
    return tab


def _map(path):
    """records.bin's bytes, memory-mapped read-only (b"" when empty)."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise TraceError(f"cannot open '{path}': {e.strerror}") from None


def read_manifest(path):
    """The manifest of the trace in directory `path`, checked as the C++
    reader checks it; raises TraceError."""
    if not os.path.isdir(path):
        raise TraceError(f"'{path}' is not a trace directory")
    mpath = os.path.join(path, "manifest.json")
    if not os.path.exists(mpath):
        raise TraceError(f"'{path}' has no manifest.json (not a trace?)")
    try:
        with open(mpath) as f:
            manifest = json.load(f)
    except ValueError as e:
        raise TraceError(f"'{mpath}' is not valid JSON: {e}") from None
    version = manifest.get("format_version") if isinstance(manifest,
                                                           dict) else None
    if not isinstance(version, int) or version < 1:
        raise TraceError(f"'{mpath}': missing or invalid 'format_version'")
    if version > FORMAT_VERSION:
        raise TraceError(f"'{mpath}': trace format version {version} is newer "
                         f"than this reader supports (version "
                         f"{FORMAT_VERSION}); update GRETA")
    return manifest


def read(path):
    """Reads the trace in directory `path`; raises TraceError when unusable."""
    manifest = read_manifest(path)
    version = manifest["format_version"]
    rpath = os.path.join(path, "records.bin")
    data = _map(rpath)
    if len(data) < OLD_FILE_HEADER_SIZE or data[:8] != FILE_MAGIC:
        raise TraceError(f"'{rpath}' is empty or not a GRETA trace")
    fversion, header_size = struct.unpack_from("<II", data, 8)
    if fversion > FORMAT_VERSION:
        raise TraceError(f"'{rpath}': trace format version {fversion} is newer "
                         f"than this reader supports (version "
                         f"{FORMAT_VERSION}); update GRETA")
    if fversion != version:
        raise TraceError(f"'{rpath}': format version {fversion} disagrees "
                         f"with the manifest ({version})")
    least = FILE_HEADER_SIZE if fversion >= 3 else OLD_FILE_HEADER_SIZE
    if header_size < least or header_size > len(data):
        raise TraceError(f"'{rpath}': bad header size {header_size}")
    # Format 3: the run id ties records.bin to its manifest (TRACE_FORMAT.md).
    run_id = manifest.get("run_id", "")
    if fversion >= 3 and run_id:
        held = bytes(data[RUN_ID_OFFSET:RUN_ID_OFFSET + RUN_ID_BYTES]).hex()
        if held != run_id:
            raise TraceError(f"'{os.path.join(path, 'manifest.json')}' names "
                             f"run {run_id} but '{rpath}' holds run {held}: "
                             f"the two files come from different runs")
    digest = hashlib.sha256(bytes(data[:header_size]))
    mv = memoryview(data)
    frames, rows, stop, off = [], 0, "", header_size
    while off < len(data):
        where = f"record {rows} at byte {off}: "
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
        body = mv[off + 8:off + 8 + length]
        (crc,) = struct.unpack_from("<I", data, off + 8 + length)
        if crc != zlib.crc32(body):
            stop = where + "checksum mismatch"
            break
        try:
            frame = decode_block(body) if block else decode_body(body)
        except ValueError as e:
            stop = where + (f"malformed block body: {e}" if block
                            else f"malformed body: {e}")
            break
        frames.append(frame)
        rows += len(frame) if block else 1
        digest.update(data[off:off + 8])
        digest.update(data[off + 8 + length:off + 12 + length])
        off += 12 + length
    if manifest.get("complete") is True:
        # A finished run's count and records digest (TRACE_FORMAT.md); a bad
        # frame in a finished run is corruption, not truncation.
        if stop:
            raise TraceError(f"'{rpath}' is corrupt: {stop}, in a run that "
                             f"finished")
        want = manifest.get("records")
        if isinstance(want, int) and want != rows:
            raise TraceError(f"'{rpath}' holds {rows} records but its "
                             f"manifest says the run finished with {want}: "
                             f"the file was cut or altered")
        sealed = manifest.get("records_digest")
        if sealed and sealed != digest.hexdigest():
            raise TraceError(f"'{rpath}' does not match the records_digest "
                             f"of its manifest ({sealed}; read "
                             f"{digest.hexdigest()}): the file was altered")
    if not rows:
        raise TraceError(f"trace '{path}' holds no readable record"
                         + (f" ({stop})" if stop else ""))
    return Trace(path, manifest, frames, stop, off)


def stored_bytes(r):
    """The row's bytes as stored (bf16 values were widened to f32)."""
    if r.dtype == "bf16":
        return (r.values.reshape(-1).view(np.uint32) >> 16).astype("<u2").tobytes()
    return r.values.tobytes()
