"""HF reference activations (models/hf-refs, docs/MODELS.md): read and
write them, check what they mean, measure errors against them, and turn one
into a GRETA trace. numpy only: CI has no torch.

    python -m greta_trace.hf_refs ACTIVATIONS.safetensors --trace-dir D
        [--layers L] [--stages S] [--positions P] [--payload full]
        [--model-digest HEX] [--weights-digest HEX] [--identity-from TRACE]

An activations file (scripts/hf_refs/make_refs.py writes them on the GPU
machine) is a safetensors file of float32 [tokens, width] arrays named as
greta_trace.hf_table names the points ("embed_out", "L0.attn_in",
"L1.router_logits", "logits", ...), plus "prompt_ids" (int64), with
`{"num_hidden_layers": "N", ...}` as its __metadata__. Keeping HF's raw
values rather than traces keeps the committed data independent of GRETA's
stage table: this converter writes what the stage table knows today.
"""
import argparse
import json
import math
import struct
import sys

import numpy as np

from . import hf_table
from .filter import FilterError
from .writer import Writer, WriterError, prompt_digest

_ST_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8",
              "I32": "<i4", "BF16": "<u2"}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items() if k != "BF16"}
_MAX_HEADER = 100 << 20


class RefError(Exception):
    """A reference file that cannot be used; the message names it."""


# -- safetensors, the few dtypes references use --------------------------

def read_safetensors(path):
    """({name: array}, metadata dict) of a safetensors file. bf16 tensors
    are widened to float32."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RefError(f"cannot read '{path}': {e.strerror}") from None
    if len(data) < 8:
        raise RefError(f"'{path}': too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(_MAX_HEADER, len(data) - 8):
        raise RefError(f"'{path}': header length {n} exceeds the file size")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError as e:
        raise RefError(f"'{path}': bad header JSON: {e}") from None
    meta = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        try:
            dt = _ST_DTYPES[info["dtype"]]
            start, end = info["data_offsets"]
            shape = [int(d) for d in info["shape"]]
        except (KeyError, TypeError, ValueError):
            raise RefError(f"'{path}': tensor '{name}': unsupported or "
                           f"malformed entry {info}") from None
        count = int(np.prod(shape)) if shape else 1
        if end > len(body):
            raise RefError(f"'{path}': tensor '{name}' ends at byte {end} of "
                           f"the data, which has {len(body)} (truncated?)")
        if not 0 <= start <= end or \
                end - start != count * np.dtype(dt).itemsize:
            raise RefError(f"'{path}': tensor '{name}': data_offsets "
                           f"[{start}, {end}) do not hold shape {shape} of "
                           f"{info['dtype']}")
        a = np.frombuffer(body[start:end], dtype=dt).reshape(shape)
        if info["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a
    return out, meta


def write_safetensors(path, arrays, metadata=None):
    """Writes {name: array} (float32/64/16, int64/32) as safetensors, names
    sorted, the header padded to 8 bytes as the safetensors library does."""
    header, offset, parts = {}, 0, []
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        a = a.astype(a.dtype.newbyteorder("<"))
        if a.dtype not in _ST_NAMES:
            raise RefError(f"'{name}': dtype {a.dtype} cannot be written")
        raw = a.tobytes()
        header[name] = {"dtype": _ST_NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        parts.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for raw in parts:
            f.write(raw)


# -- what a reference file holds -----------------------------------------

def load(path):
    """(activations {(point name, layer): float array}, prompt ids, number
    of layers, metadata) of a reference file; RefError when a key is not a
    table point or the shapes disagree."""
    arrays, meta = read_safetensors(path)
    if "prompt_ids" not in arrays:
        raise RefError(f"'{path}': no 'prompt_ids'")
    ids = [int(i) for i in arrays.pop("prompt_ids").reshape(-1)]
    layer_keys = [k for k in arrays if k.startswith("L") and "." in k]
    try:
        layers = int(meta["num_hidden_layers"])
    except (KeyError, ValueError):
        layers = 1 + max((int(k[1:].partition(".")[0]) for k in layer_keys
                          if k[1:].partition(".")[0].isdigit()), default=0)
    acts = {}
    for name, a in arrays.items():
        try:
            point, layer = hf_table.parse_key(name, layers)
        except hf_table.TableError as e:
            raise RefError(f"'{path}': {e}") from None
        if a.ndim != 2 or a.shape[0] != len(ids):
            raise RefError(f"'{path}': '{name}' has shape {list(a.shape)}, "
                           f"expected [{len(ids)} tokens, width]")
        if not 0 <= layer < layers:
            raise RefError(f"'{path}': '{name}': layer {layer} outside the "
                           f"{layers} layers")
        acts[(point, layer)] = a
    return acts, ids, layers, meta


def order(key):
    """Execution order of (point name, layer)."""
    point, layer = key
    group = {"embed_out": 0, "final_norm": 2, "logits": 2}.get(point, 1)
    return (group, layer, hf_table.ORDER.index(point))


def convert(path, trace_dir, filt, *, model_digest="", weights_digest="",
            overwrite=False, tool_version=""):
    """Writes reference file `path` as a GRETA trace (f32 rows, payload
    full unless the filter says otherwise). Returns (rows written, {point
    name: why it was left out})."""
    acts, ids, layers, meta = load(path)
    left_out = {}
    with Writer(trace_dir, token_count=len(ids), overwrite=overwrite,
                model=meta.get("family", ""), model_digest=model_digest,
                weights_digest=weights_digest,
                prompt_name=meta.get("prompt_name", "hf-refs"),
                prompt_digest=prompt_digest(ids), backend="hf-transformers",
                precision="f32",
                tool_version=tool_version or meta.get("engine", ""),
                payload="full", filter=filt) as w:
        for point, layer in sorted(acts, key=order):
            p = hf_table.POINT_BY_NAME[point]
            if not hf_table.recordable(p):
                left_out[point] = hf_table.status(p)
                continue
            w.tensor(p.stage, layer, np.ascontiguousarray(
                acts[(point, layer)], dtype=np.float32))
        return w.records, left_out


# -- checks of meaning, run on the device on every family ----------------

def rope_apply(x, positions, inv_freq, scale, head_dim):
    """HF's rotate-half RoPE of rows x [tokens, heads*head_dim] (the first
    2*len(inv_freq) columns of each head rotate, the rest pass), in f64."""
    x = np.asarray(x, dtype=np.float64).reshape(len(positions), -1, head_dim)
    rot = 2 * len(inv_freq)
    freqs = np.outer(np.asarray(positions, np.float64),
                     np.asarray(inv_freq, np.float32).astype(np.float64))
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = (np.cos(emb) * scale)[:, None], (np.sin(emb) * scale)[:, None]
    r = x[..., :rot]
    half = np.concatenate([-r[..., rot // 2:], r[..., :rot // 2]], axis=-1)
    out = np.concatenate([r * cos + half * sin, x[..., rot:]], axis=-1)
    return out.reshape(len(positions), -1)


def _max_rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def meaning_checks(acts, layers, rope=None, head_dim=None, tol=1e-5,
                   rope_tol=1e-4):
    """Checks that the captured values mean what the table says, from the
    values alone: each residual is the sum of its parts, RoPE maps
    q/k_pre_rope to q/k_post_rope with `rope` ({"inv_freq": [...],
    "attention_scaling": s}), the expert ids are the router's top-k, the
    layers chain. Returns a list of (check, max relative error or None,
    ok). RoPE is checked within `rope_tol` (HF's f32 angles against
    ours in f64); the rest within `tol`."""
    out = []

    def add(name, err, ok=None, within=tol):
        out.append((name, err, err <= within if ok is None else ok))

    tokens = len(next(iter(acts.values())))
    for layer in range(layers):
        a = {p: v for (p, lay), v in acts.items() if lay == layer}
        if {"residual_pre_attn", "attn_out", "residual_post_attn"} <= a.keys():
            add(f"L{layer} residual_post_attn = residual_pre_attn + attn_out",
                _max_rel(a["residual_pre_attn"] + a["attn_out"],
                         a["residual_post_attn"]))
        if {"residual_post_attn", "mlp_out", "residual_post_mlp"} <= a.keys():
            add(f"L{layer} residual_post_mlp = residual_post_attn + mlp_out",
                _max_rel(a["residual_post_attn"] + a["mlp_out"],
                         a["residual_post_mlp"]))
        nxt = acts.get(("residual_pre_attn", layer + 1))
        if nxt is not None and "residual_post_mlp" in a:
            add(f"L{layer + 1} residual_pre_attn = L{layer} "
                f"residual_post_mlp", _max_rel(a["residual_post_mlp"], nxt))
        if layer == 0 and ("embed_out", 0) in acts and \
                "residual_pre_attn" in a:
            add("embed_out = L0 residual_pre_attn",
                _max_rel(acts[("embed_out", 0)], a["residual_pre_attn"]))
        if rope is not None and head_dim:
            for qk in ("q", "k"):
                pre, post = a.get(f"{qk}_pre_rope"), a.get(f"{qk}_post_rope")
                if pre is not None and post is not None:
                    want = rope_apply(pre, range(tokens), rope["inv_freq"],
                                      rope["attention_scaling"], head_dim)
                    add(f"L{layer} {qk}_post_rope = RoPE({qk}_pre_rope)",
                        _max_rel(want, post), within=rope_tol)
        if {"router_logits", "expert_selection"} <= a.keys():
            k = a["expert_selection"].shape[1] // 2
            ids = a["expert_selection"][:, :k]
            logits = a["router_logits"].astype(np.float64)
            # The top-k of the softmax is the top-k of the logits.
            top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
            same = int(np.sum(np.all(top == ids, axis=1)))
            add(f"L{layer} expert ids = top-{k} of router_logits "
                f"({same}/{tokens} tokens)", 0.0, same == tokens)
        if {"moe_out", "mlp_out"} <= a.keys() and "shared_expert" not in a:
            add(f"L{layer} mlp_out = moe_out",
                _max_rel(a["moe_out"], a["mlp_out"]))
        if {"moe_out", "mlp_out", "shared_expert",
                "shared_expert_gate"} <= a.keys():
            gate = 1.0 / (1.0 + np.exp(-a["shared_expert_gate"]))
            add(f"L{layer} mlp_out = moe_out + sigmoid(gate) shared_expert",
                _max_rel(a["moe_out"] + gate * a["shared_expert"],
                         a["mlp_out"]))
    return out


# -- errors against a reference ------------------------------------------

def rel_l2(test, ref):
    """(relative L2 of the whole tensor, largest relative L2 of a row):
    ||test - ref|| / ||ref||, in f64 (inf where ref is zero and test is
    not, 0 where both are)."""
    t, r = np.asarray(test, np.float64), np.asarray(ref, np.float64)

    def rel(d, n):
        return np.where(n > 0, d / np.where(n > 0, n, 1),
                        np.where(d > 0, np.inf, 0.0))

    whole = rel(np.linalg.norm(t - r), np.linalg.norm(r))
    rows = rel(np.linalg.norm(t - r, axis=-1), np.linalg.norm(r, axis=-1))
    return float(whole), float(np.max(rows))


def error_table(test, ref):
    """{key: {"rel_l2", "max_row_rel_l2"}} of every activation the two
    {key: [tokens, width]} dicts share; for expert_selection the ids that
    differ (tokens) and the weights' errors."""
    out = {}
    for k in sorted(ref.keys() & test.keys()):
        t, r = test[k], ref[k]
        if k.endswith(".expert_selection"):
            n = r.shape[1] // 2
            whole, row = rel_l2(t[:, n:], r[:, n:])
            out[k] = {"tokens_with_other_experts": int(np.sum(np.any(
                t[:, :n] != r[:, :n], axis=1))),
                "weights_rel_l2": _round(whole),
                "weights_max_row_rel_l2": _round(row)}
            continue
        whole, row = rel_l2(t, r)
        out[k] = {"rel_l2": _round(whole), "max_row_rel_l2": _round(row)}
    return out


def _round(x):
    return x if not math.isfinite(x) or x == 0 else float(f"{x:.3g}")


# -- the command ----------------------------------------------------------

def main(argv=None):
    from .hf import add_filter_args, build_filter
    ap = argparse.ArgumentParser(
        prog="python -m greta_trace.hf_refs",
        description="Write an HF reference activations file "
                    "(models/hf-refs/<family>/activations.safetensors) as a "
                    "GRETA trace, f32, payload full.")
    ap.add_argument("activations")
    ap.add_argument("--trace-dir", required=True)
    add_filter_args(ap)
    ap.add_argument("--model-digest", default="")
    ap.add_argument("--weights-digest", default="")
    ap.add_argument("--identity-from", metavar="TRACE",
                    help="take model_digest and weights_digest from this "
                         "trace's manifest (a GRETA run of the committed "
                         "checkpoint); its prompt digest must match")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    try:
        filt = build_filter(args)
        model_digest, weights_digest = args.model_digest, args.weights_digest
        if args.identity_from:
            from .reader import TraceError, read_manifest
            try:
                m = read_manifest(args.identity_from)
            except TraceError as e:
                raise RefError(f"--identity-from: {e}") from None
            _, ids, _, _ = load(args.activations)
            if m.get("prompt_digest") != prompt_digest(ids):
                raise RefError(f"--identity-from '{args.identity_from}' ran "
                               f"another prompt than '{args.activations}'")
            model_digest = model_digest or m.get("model_digest", "")
            weights_digest = weights_digest or m.get("weights_digest", "")
        rows, left_out = convert(args.activations, args.trace_dir, filt,
                                 model_digest=model_digest,
                                 weights_digest=weights_digest,
                                 overwrite=args.overwrite)
    except (RefError, FilterError, WriterError) as e:
        print(f"greta_trace.hf_refs: error: {e}", file=sys.stderr)
        return 2
    print(f"greta_trace.hf_refs: {rows} rows written to {args.trace_dir}")
    for name, why in left_out.items():
        print(f"  not in the trace: {name} ({why})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
