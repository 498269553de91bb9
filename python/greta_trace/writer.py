"""Writes a GRETA trace from numpy rows: the bytes GRETA's C++ writer
(runtime/lib/Writer.cpp) writes for the same rows, manifest, filter and block
limits, so an engine outside GRETA can be compared and bisected by greta-diff
and greta-bisect (docs/PYTHON.md).

    with greta_trace.Writer("runs/mine", token_count=len(ids),
                            prompt_digest=greta_trace.prompt_digest(ids),
                            ...) as w:
        w.tensor("mlp_out", layer, rows)   # rows: one per position

The writer consults a Filter (by default the GRETA_TRACE_* environment
variables of greta-bisect's steps) before it hashes anything.
"""
import datetime
import fcntl
import hashlib
import json
import os
import struct
import zlib

import numpy as np

from . import rows as rowdigest
from .filter import Filter
from .format import (BLOCK_CONTIGUOUS, BLOCK_MAGIC, DTYPES, FILE_HEADER_SIZE,
                     FILE_MAGIC, FORMAT_VERSION, INT64_MAX,
                     MAX_BLOCK_BODY_BYTES, MAX_BODY_BYTES, MAX_RANK, MAX_TOP,
                     PAYLOADS, RECORD_MAGIC, RUN_ID_BYTES, STAGES,
                     WRITE_BUFFER_BYTES, stage_index)

_FLUSH_EVERY_RECORDS = 4096  # as the C++ writer
_NUMPY_DTYPES = {"float32": "f32", "float64": "f64", "float16": "f16"}


class WriterError(Exception):
    """The trace cannot be written (locked, exists, I/O error); the message
    names the directory or file."""


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def file_digest(path):
    """sha256 (hex) of a whole file (a config's, say)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}


def weights_digests(path):
    """(weights_digest, weights_tensor_digests) of a safetensors file, as
    greta-run computes them (docs/TRACE_FORMAT.md): a tensor's digest is
    the SHA-256 of its name, shape and values widened to f64 little endian;
    the whole digest that of the (name, digest) pairs in name order."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    u64 = lambda v: struct.pack("<Q", v)  # noqa: E731
    tensors = {}
    for name in sorted(header):
        e = header[name]
        begin, end = e["data_offsets"]
        raw = np.frombuffer(data, dtype=np.uint8, count=end - begin,
                            offset=begin)
        if e["dtype"] == "BF16":  # the upper half of an f32
            values = (raw.view("<u2").astype("<u4") << 16).view("<f4")
        elif e["dtype"] in _SAFETENSORS_DTYPES:
            values = raw.view(_SAFETENSORS_DTYPES[e["dtype"]])
        else:
            raise ValueError(f"{path}: tensor '{name}': unsupported dtype "
                             f"'{e['dtype']}'")
        h = hashlib.sha256(u64(len(name.encode())) + name.encode())
        h.update(u64(len(e["shape"])) + b"".join(u64(d) for d in e["shape"]))
        h.update(values.astype("<f8").tobytes())
        tensors[name] = h.hexdigest()
    whole = hashlib.sha256()
    for name in sorted(tensors):
        whole.update(u64(len(name.encode())) + name.encode())
        whole.update(bytes.fromhex(tensors[name]))
    return whole.hexdigest(), tensors


def prompt_digest(token_ids):
    """sha256 (hex) of the token ids as int64 little endian: the manifest's
    prompt_digest."""
    return sha256_hex(np.asarray(token_ids, dtype="<i8").tobytes())


def _contiguous(positions):
    if len(positions) < 2:
        return True
    return bool(np.all(positions[1:] - positions[:-1] == 1)
                and not np.any(positions[:-1] == INT64_MAX))


def _frame(magic, body_parts):
    """[magic][body length][body][CRC-32 of the body], as parts."""
    body_len = sum(len(p) for p in body_parts)
    crc = 0
    for p in body_parts:
        crc = zlib.crc32(p, crc)
    return [struct.pack("<II", magic, body_len), *body_parts,
            struct.pack("<I", crc)]


class Writer:
    """A trace being written to directory `trace_dir`.

    Manifest fields (docs/TRACE_FORMAT.md) are keyword arguments;
    `token_count` resolves the filter's `last`. `payload` is what a row is
    written with unless the filter's payload overrides it (GRETA's compiled
    payload). `filter`: a Filter, or None for Filter.from_env(). A
    directory holding a trace is refused unless `overwrite`; a second
    writer on the same directory is refused while the first runs.
    """

    def __init__(self, trace_dir, *, token_count, model="", model_digest="",
                 weights_digest="", weights_tensor_digests=None,
                 weights_dtype="", prompt_digest="", prompt_name="",
                 prompt_ids=None, tokenizer="", tokenizer_digest="",
                 backend="", precision="", pipeline="", tool_version="",
                 created_at=None, payload="hash", filter=None,
                 overwrite=False, max_block_body_bytes=MAX_BLOCK_BODY_BYTES):
        if payload not in PAYLOADS:
            raise ValueError(f"unknown payload '{payload}': expected hash, "
                             f"stats or full")
        self.dir = str(trace_dir)
        self.filter = Filter.from_env() if filter is None else filter
        self.token_count = int(token_count)
        self.payload = payload
        self.max_block_body_bytes = min(max(1, max_block_body_bytes),
                                        MAX_BODY_BYTES)
        if created_at is None:
            created_at = datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        self.fields = {
            "model": model, "model_digest": model_digest,
            "weights_digest": weights_digest,
            "weights_tensor_digests": dict(weights_tensor_digests or {}),
            "weights_dtype": weights_dtype, "prompt_digest": prompt_digest,
            "prompt_name": prompt_name, "token_count": self.token_count,
            "prompt_ids": ([] if prompt_ids is None
                           else [int(i) for i in prompt_ids]),
            "tokenizer": tokenizer, "tokenizer_digest": tokenizer_digest,
            "backend": backend, "precision": precision, "pipeline": pipeline,
            "tool_version": tool_version, "filter": str(self.filter),
            "created_at": created_at}
        # Format 3: 128 random bits in the manifest and records.bin's header
        # tie the two files together; the records digest seals a finished
        # run (docs/TRACE_FORMAT.md).
        self.run_id = os.urandom(RUN_ID_BYTES)
        self.fields["run_id"] = self.run_id.hex()
        self._digest = hashlib.sha256()
        self.records = 0
        self.bytes_written = 0
        self._buf = bytearray()
        self._since_flush = 0
        self._fd = -1
        self._lock_fd = -1
        self._open(overwrite)

    # -- the one place that says what the manifest and the header hold ----

    def manifest(self, complete):
        """The manifest as written: at creation (complete False, records 0)
        and at finish()."""
        m = {"format": "greta-trace", "format_version": FORMAT_VERSION}
        m.update(self.fields)
        m["complete"] = complete
        m["records"] = self.records if complete else 0
        if complete:
            m["records_digest"] = self._digest.hexdigest()
        return m

    def file_header(self):
        return (FILE_MAGIC + struct.pack("<II", FORMAT_VERSION,
                                         FILE_HEADER_SIZE) + self.run_id)

    # -- opening and closing -------------------------------------------------

    def _open(self, overwrite):
        if not self.dir:
            raise WriterError("empty trace directory name")
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as e:
            raise WriterError(f"cannot create trace directory '{self.dir}': "
                              f"{e.strerror}") from None
        lock = os.path.join(self.dir, ".lock")
        try:
            self._lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise WriterError(f"cannot create lock file '{lock}': "
                              f"{e.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 31, 0).decode(errors="replace")
            self._release()
            raise WriterError(f"trace directory '{self.dir}' is locked by "
                              f"another writer (pid "
                              f"{holder.strip() or 'unknown'})") from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)
        records = os.path.join(self.dir, "records.bin")
        manifest = os.path.join(self.dir, "manifest.json")
        if not overwrite and (os.path.exists(records)
                              or os.path.exists(manifest)):
            self._release()
            raise WriterError(f"trace directory '{self.dir}' already holds a "
                              f"trace (remove it or overwrite)")
        # Manifest first (complete: false), then the records file.
        if os.path.exists(records):
            os.unlink(records)
        self._write_manifest(complete=False)
        try:
            self._fd = os.open(records, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                               | os.O_APPEND, 0o644)
        except OSError as e:
            self._release()
            raise WriterError(f"cannot create '{records}': "
                              f"{e.strerror}") from None
        # The header goes out at once: an empty trace is still recognizable.
        header = self.file_header()
        self._digest.update(header)
        self._buf += header
        self.flush()

    def _write_manifest(self, complete):
        """Through a temporary file and rename(2): never half written. The
        text is nlohmann::json's dump(2) of the C++ writer: keys sorted."""
        path = os.path.join(self.dir, "manifest.json")
        text = json.dumps(self.manifest(complete), indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"
        tmp = path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            raise WriterError(f"trace '{self.dir}': cannot write '{tmp}': "
                              f"{e.strerror}") from None

    def _release(self):
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def flush(self):
        """Hands the buffered frames to the OS (write(2))."""
        self._check_open()
        self._since_flush = 0
        if self._buf:
            self._write_all(self._buf)
            self._buf = bytearray()

    def finish(self):
        """Flushes, fsyncs and marks the trace complete."""
        self.flush()
        try:
            os.fsync(self._fd)
        except OSError as e:
            self._fail("fsync", e)
        os.close(self._fd)
        self._fd = -1
        self._write_manifest(complete=True)
        self._release()

    close = finish

    def abandon(self):
        """Stops without finishing (a failed run): what was appended stays
        readable, the manifest stays `complete: false`."""
        if self._fd >= 0:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = -1
        self._release()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.finish()
        else:
            self.abandon()
        return False

    def _check_open(self):
        if self._fd < 0:
            raise WriterError(f"trace '{self.dir}' is already finished")

    def _write_all(self, data):
        view = memoryview(data)
        try:
            while view:
                done = os.write(self._fd, view)
                view = view[done:]
                self.bytes_written += done
        except OSError as e:
            self._fail("write", e)

    def _fail(self, what, e):
        self._buf = bytearray()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._release()
        raise WriterError(f"trace '{self.dir}/records.bin': {what} failed: "
                          f"{e.strerror} ({self.bytes_written} bytes already "
                          f"written stay readable)") from None

    # -- rows ----------------------------------------------------------------

    @staticmethod
    def _dtype(rows, dtype):
        """The trace dtype of `rows` (an ndarray): `dtype`, or inferred."""
        if dtype is None:
            dtype = _NUMPY_DTYPES.get(rows.dtype.name)
            if dtype is None:
                raise TypeError(f"rows of numpy dtype {rows.dtype}: give "
                                f"float32, float64 or float16 rows, or "
                                f"dtype='bf16' with uint16 bits")
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype '{dtype}': expected "
                             f"{', '.join(DTYPES)}")
        return dtype

    def _payload(self, payload):
        p = self.filter.payload or payload or self.payload
        if p not in PAYLOADS:
            raise ValueError(f"unknown payload '{p}': expected hash, stats "
                             f"or full")
        return p

    def tensor(self, stage, layer, rows, positions=None, *, payload=None,
               dtype=None):
        """Writes one traced tensor as GRETA's runtime does: `rows` holds
        one row per position (shape [n, ...]; `positions` defaults to 0..n-1).
        The filter picks the stage, layer and positions and may override
        the payload; the selected rows become block frames. Logits carry
        their top-5 ids. Returns the rows written."""
        s = stage_index(stage)
        rows = np.asarray(rows)
        dtype = self._dtype(rows, dtype)
        if rows.ndim < 2:
            raise ValueError(f"{STAGES[s]} layer {layer}: rows need shape "
                             f"[positions, ...], got {list(rows.shape)}")
        n = rows.shape[0]
        positions = (np.arange(n, dtype=np.int64) if positions is None
                     else np.asarray(positions, dtype=np.int64).reshape(-1))
        if len(positions) != n:
            raise ValueError(f"{STAGES[s]} layer {layer}: {n} rows but "
                             f"{len(positions)} positions")
        self._check_open()
        # The filter first: rows it drops are never converted nor hashed.
        if not self.filter.selects(s, layer):
            return 0
        payload = self._payload(payload)
        keep = [i for i, p in enumerate(positions.tolist())
                if self.filter.selects_position(p, self.token_count)]
        if not keep:
            return 0
        if len(keep) < n:
            rows, positions = rows[keep], positions[keep]
        stored = rowdigest.as_stored(rows, dtype)
        entries = rowdigest.entries(stored, dtype, payload != "hash")
        top = (rowdigest.top_ids(stored, dtype) if STAGES[s] == "logits"
               else rowdigest.selection_ids(stored, dtype)
               if STAGES[s] == "expert_selection" and stored.shape[1] % 2 == 0
               else None)
        self._append_block(s, int(layer), dtype, payload, stored, positions,
                           entries, top)
        return len(positions)

    def record(self, stage, layer, position, row, *, payload=None,
               dtype=None):
        """Writes one row as a record frame (the format's one-row frame; the
        runtime writes blocks). The filter applies. Returns 1 if written."""
        s = stage_index(stage)
        row = np.asarray(row)[np.newaxis]
        dtype = self._dtype(row, dtype)
        stored = rowdigest.as_stored(row, dtype)
        self._check_open()
        if not (self.filter.selects(s, layer)
                and self.filter.selects_position(position, self.token_count)):
            return 0
        payload = self._payload(payload)
        shape = stored.shape[1:]
        if len(shape) > MAX_RANK:
            raise ValueError(f"rank {len(shape)} too large (at most 8)")
        e = rowdigest.entries(stored, dtype, payload != "hash")[0]
        top = []
        if STAGES[s] == "logits":
            top = [t for t in rowdigest.top_ids(stored, dtype)[0].tolist()
                   if t != -1]
        elif STAGES[s] == "expert_selection" and stored.shape[1] % 2 == 0:
            top = rowdigest.selection_ids(stored, dtype)[0].tolist()
            while top and top[-1] == -1:
                top.pop()
        values = stored.tobytes() if payload == "full" else b""
        stats = (e["nan"], e["inf"], e["min"], e["max"], e["mean"], e["l2"]) \
            if payload != "hash" else (0, 0, 0.0, 0.0, 0.0, 0.0)
        body = b"".join([
            struct.pack("<4BqqI", s, DTYPES.index(dtype),
                        PAYLOADS.index(payload), 0, int(layer), int(position),
                        len(shape)),
            struct.pack(f"<{len(shape)}q", *shape),
            e["sha256"].tobytes(),
            struct.pack("<qqqdddd", int(e["nz"]), *stats),
            struct.pack(f"<I{len(top)}i", len(top), *top),
            struct.pack("<Q", len(values)), values])
        if 12 + len(body) > MAX_BODY_BYTES:
            raise ValueError(f"a record of {len(body)} bytes is larger than "
                             f"a frame may hold (2^30)")
        self._put(_frame(RECORD_MAGIC, [body]), 1)
        return 1

    def _append_block(self, s, layer, dtype, payload, stored, positions,
                      entries, top):
        """TraceWriter::appendBlock: frames of whole rows, each body within
        the block limit and its part before the values within the 1 MiB
        buffer."""
        shape = stored.shape[1:]
        if len(shape) > MAX_RANK:
            raise ValueError(f"rank {len(shape)} too large (at most 8)")
        k = 0 if top is None else top.shape[1]
        assert k <= MAX_TOP
        entry = entries.dtype.itemsize
        row_bytes = stored[0].nbytes if payload == "full" else 0
        fixed = 24 + 8 * len(shape)
        if fixed + 8 + entry + 4 * k + row_bytes > MAX_BODY_BYTES:
            raise ValueError("a frame of one row needs more than the 2^30 "
                             "bytes a frame may hold")
        head_row = 8 + entry + 4 * k
        limit = self.max_block_body_bytes
        by_body = ((limit - fixed) // (head_row + row_bytes)
                   if limit > fixed else 0)
        by_head = (WRITE_BUFFER_BYTES - 12 - fixed) // head_row
        per_frame = max(1, min(by_body, by_head))
        tags = (s, DTYPES.index(dtype), PAYLOADS.index(payload))
        shape_bytes = struct.pack(f"<I{len(shape)}q", len(shape), *shape)
        n = len(positions)
        for first in range(0, n, per_frame):
            part = slice(first, min(n, first + per_frame))
            pos = positions[part]
            contiguous = _contiguous(pos)
            body = [struct.pack("<4Bq", *tags,
                                BLOCK_CONTIGUOUS if contiguous else 0, layer),
                    shape_bytes, struct.pack("<I", len(pos)),
                    pos[:1].astype("<i8").tobytes() if contiguous
                    else pos.astype("<i8").tobytes(),
                    entries[part].tobytes(), struct.pack("<I", k)]
            if k:
                body.append(np.ascontiguousarray(top[part], "<i4").tobytes())
            if row_bytes:
                body.append(memoryview(stored[part]).cast("B"))
            self._put(_frame(BLOCK_MAGIC, body), len(pos))

    def _put(self, parts, rows):
        # The records digest: each frame's magic, length and CRC (_frame's
        # first and last parts), in file order.
        self._digest.update(parts[0])
        self._digest.update(parts[-1])
        size = sum(len(p) for p in parts)
        if self._buf and len(self._buf) + size > WRITE_BUFFER_BYTES:
            self.flush()
        if size <= WRITE_BUFFER_BYTES:
            for p in parts:
                self._buf += p
        else:  # larger than the buffer (which is empty now): at once
            for p in parts:
                self._write_all(p)
        self.records += rows
        self._since_flush += rows
        if (len(self._buf) >= WRITE_BUFFER_BYTES
                or self._since_flush >= _FLUSH_EVERY_RECORDS):
            self.flush()
