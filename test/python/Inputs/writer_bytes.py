"""The Python Writer against GRETA's C++ writer, from the same rows.

  writer_bytes.py GRETA_TRACE_GEN WORK_DIR

For each case: the rows are saved as files with a spec for
`greta-trace-gen --arrays` (the C++ runtime's Session::trace, or
fillRowRecord with appendBlock/append), and written again by
greta_trace.Writer with the same manifest fields and filter (the filter
through the GRETA_TRACE_* environment variables). records.bin must be the
same bytes, and manifest.json the same text (created_at is given to both).
Prints one line per case and `all N cases identical`; exits 1 at the first
difference, naming the byte offset and the field.
"""
import hashlib
import json
import os
import subprocess
import struct
import sys

import numpy as np

import greta_trace

GEN, WORK = sys.argv[1], sys.argv[2]
TOKENS = 12
IDS = list(range(100, 100 + TOKENS))
# Every manifest field greta-run writes, none left at its default.
MANIFEST = {"model": "arrays", "model_digest": "m" * 64,
            "weights_digest": "w" * 64,
            "weights_tensor_digests": {"b.weight": "b" * 64,
                                       "a.weight": "a" * 64},
            "weights_dtype": "f32+bf16",
            "prompt_digest": greta_trace.prompt_digest(IDS),
            "prompt_name": "p_arrays", "token_count": TOKENS,
            "prompt_ids": IDS, "tokenizer": "t\u00f6k/tokenizer.json",
            "tokenizer_digest": "t" * 64,
            "backend": "cpu", "precision": "f32", "pipeline": "",
            "tool_version": "test", "created_at": "2026-01-01T00:00:00Z"}
rng = np.random.default_rng(7)


def special_rows(positions, cols, dtype):
    """Random rows for `positions` with the cases the digests must get
    right at positions 0-8: NaN, inf, -0 and 0 in every order, a row of
    zeros, an all-NaN row, ties."""
    x = rng.standard_normal((TOKENS, cols)).astype(dtype)
    x[0, 1] = np.nan
    x[1, :] = 0.0
    x[1, 3] = -0.0
    x[2, :] = -0.0
    x[2, 5] = 0.0
    x[3, 2] = np.inf
    x[3, 4] = -np.inf
    x[4, :] = np.nan
    x[5, :] = np.abs(x[5, :])
    x[5, 0] = -0.0       # the minimum is a zero: its sign is the first's
    x[5, 7] = 0.0
    x[6, :] = 1.5        # every value tied (logits: ids 0..4)
    x[6, 3] = np.nan
    x[7, :] = np.abs(x[7, :])
    x[7, 0], x[7, 2] = 0.0, -0.0    # numpy's min gives -0 here, GRETA 0
    x[8, :] = -np.abs(x[8, :])
    x[8, 0], x[8, 2] = -0.0, 0.0    # and for the max
    return x[positions]


def logits_rows(positions, cols, dtype):
    x = special_rows(range(TOKENS), cols, dtype)
    x[0, :] = 3.0
    x[0, 9] = 4.0            # one best, then ties to the lower ids
    return x[positions]


def bf16_bits(x):
    """f32 -> bf16 bits, rounded to nearest even (NaN kept a NaN)."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r)


class Case:
    def __init__(self, name, calls, filter=None, max_block=None):
        self.name, self.calls = name, calls   # calls: [(positions, tensors)]
        self.filter = filter or {}
        self.max_block = max_block

    def write_cpp(self, d):
        spec = {"manifest": MANIFEST, "filter": self.filter, "calls": []}
        if self.max_block:
            spec["max_block_body_bytes"] = self.max_block
        for c, (positions, tensors) in enumerate(self.calls):
            call = {"positions": positions, "tensors": []}
            for t, (stage, layer, rows, payload, frames, dtype) in \
                    enumerate(tensors):
                f = f"c{c}t{t}.bin"
                np.ascontiguousarray(rows).tofile(os.path.join(d, f))
                call["tensors"].append({
                    "stage": stage, "layer": layer, "dtype": dtype,
                    "payload": payload, "cols": rows.shape[1], "file": f,
                    "frames": frames})
            spec["calls"].append(call)
        with open(os.path.join(d, "spec.json"), "w") as f:
            json.dump(spec, f)
        subprocess.run([GEN, os.path.join(d, "cpp"), "--arrays",
                        os.path.join(d, "spec.json")], check=True)

    def write_python(self, d):
        env = {greta_trace.ENV_VARS[k]: v for k, v in self.filter.items()}
        fields = {k: v for k, v in MANIFEST.items()}
        kw = {"max_block_body_bytes": self.max_block} if self.max_block else {}
        w = greta_trace.Writer(os.path.join(d, "py"),
                               filter=greta_trace.Filter.from_env(env),
                               overwrite=True, **fields, **kw)
        with w:
            for positions, tensors in self.calls:
                for stage, layer, rows, payload, frames, dtype in tensors:
                    if frames == "records":
                        for p, row in zip(positions, rows):
                            w.record(stage, layer, p, row, payload=payload,
                                     dtype=dtype)
                    else:
                        w.tensor(stage, layer, rows, positions,
                                 payload=payload, dtype=dtype)

    def check(self):
        d = os.path.join(WORK, self.name)
        os.makedirs(d, exist_ok=True)
        self.write_cpp(d)
        self.write_python(d)
        a = open(os.path.join(d, "cpp", "records.bin"), "rb").read()
        b = open(os.path.join(d, "py", "records.bin"), "rb").read()
        # Each run draws its own run id (header bytes 16..31): compared apart.
        ida, idb = a[16:32], b[16:32]
        if ida == idb:
            sys.exit(f"{self.name}: both writers wrote run id {ida.hex()}")
        a, b = a[:16] + a[32:], b[:16] + b[32:]
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                      min(len(a), len(b)))
            sys.exit(f"{self.name}: records.bin differs at byte {at} "
                     f"(C++ {len(a)} bytes, Python {len(b)})")
        ma = open(os.path.join(d, "cpp", "manifest.json")).read()
        mb = open(os.path.join(d, "py", "manifest.json")).read()
        ja, jb = json.loads(ma), json.loads(mb)
        for j, run_id, path in [(ja, ida, "cpp"), (jb, idb, "py")]:
            if j.get("run_id") != run_id.hex():
                sys.exit(f"{self.name}: {path} manifest run_id "
                         f"{j.get('run_id')} is not its header's "
                         f"{run_id.hex()}")
            digest = records_digest(os.path.join(d, path, "records.bin"))
            if j.get("records_digest") != digest:
                sys.exit(f"{self.name}: {path} records_digest "
                         f"{j.get('records_digest')} is not {digest}")
            ma, mb = (m.replace(j["run_id"], "RUN").replace(digest, "DIGEST")
                      for m in (ma, mb))
            j["run_id"] = "RUN"
            j["records_digest"] = "DIGEST"
        for key in sorted(ja.keys() | jb.keys()):
            if ja.get(key) != jb.get(key):
                sys.exit(f"{self.name}: manifest field '{key}' differs: C++ "
                         f"{ja.get(key)!r}, Python {jb.get(key)!r}")
        if ma != mb:
            sys.exit(f"{self.name}: manifest text differs (fields agree)")
        frames = len(greta_trace.read(os.path.join(d, "py")).frames)
        print(f"{self.name}: {len(a)} bytes, {ja['records']} records, "
              f"{frames} frames, filter '{ja['filter']}': identical")


def records_digest(path):
    """TRACE_FORMAT.md's records digest: SHA-256 of the header, then each
    frame's magic, length and CRC."""
    data = open(path, "rb").read()
    off = struct.unpack_from("<I", data, 12)[0]
    h = hashlib.sha256(data[:off])
    while off + 12 <= len(data):
        (length,) = struct.unpack_from("<I", data, off + 4)
        h.update(data[off:off + 8] + data[off + 8 + length:off + 12 + length])
        off += 12 + length
    return h.hexdigest()


def layer_calls(stages, layers, positions, dtype, payload, frames="session",
                make=special_rows, cols=16):
    tensors = []
    for layer in layers:
        for stage in stages:
            rows = (logits_rows if stage == "logits" else make)(
                positions, 40 if stage == "logits" else cols, dtype)
            tensors.append((stage, layer, rows, payload, frames,
                            "f32" if dtype == np.float32 else "f64"))
    return (positions, tensors)


ALL = list(range(TOKENS))
STAGES = ["embed_out", "q_pre_rope", "attn_out", "mlp_out", "logits"]
cases = [
    Case("hash-f32", [layer_calls(STAGES, [0, 1], ALL, np.float32, "hash")]),
    Case("stats-f32", [layer_calls(STAGES, [0, 1], ALL, np.float32, "stats")]),
    Case("full-f64", [layer_calls(STAGES, [0, 2], ALL, np.float64, "full")]),
    # Two forward calls (chunks), a filter of every kind, `last`.
    Case("filtered-chunks", [
        layer_calls(STAGES, [0, 1, 2], ALL[:7], np.float32, "hash"),
        layer_calls(STAGES, [0, 1, 2], ALL[7:], np.float32, "hash")],
         filter={"layers": "0, 2", "stages": "attn_out,mlp_out,logits",
                 "positions": "1-3,5,last", "payload": "full"}),
    Case("filter-payload-stats", [layer_calls(STAGES, [1], ALL, np.float32,
                                              "full")],
         filter={"payload": "stats", "positions": "all"}),
    # Decode steps: one position a call; non-contiguous rows in a call.
    Case("decode", [layer_calls(STAGES, [0], [p], np.float32, "full")
                    for p in range(8)] +
         [layer_calls(["mlp_out"], [0], [9, 11, 10], np.float32, "full")]),
    # Frames split by a small block limit (whole rows per frame).
    Case("split-blocks", [layer_calls(STAGES, [0], ALL, np.float32, "full",
                                      cols=64)], max_block=700),
]
# f16 and bf16 (the GPU's dtypes), as blocks and as record frames.
for dtype in ("f16", "bf16"):
    for frames in ("block", "records"):
        tensors = []
        for layer, payload in ((0, "hash"), (1, "stats"), (2, "full")):
            x = special_rows(ALL, 24, np.float32)
            rows = x.astype(np.float16) if dtype == "f16" else bf16_bits(x)
            tensors.append(("residual_post_mlp", layer, rows, payload, frames,
                            dtype))
        cases.append(Case(f"{dtype}-{frames}", [(ALL, tensors)]))
cases.append(Case("f32-records", [layer_calls(
    ["attn_out", "mlp_out"], [3], ALL, np.float32, "stats",
    frames="records")]))

for case in cases:
    case.check()
print(f"all {len(cases)} cases identical")
