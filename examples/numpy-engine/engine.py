#!/usr/bin/env python3
"""A small Llama inference engine in numpy (f32) that writes a GRETA trace.

    engine.py --config CONFIG.json --weights W.safetensors --prompt P.json \\
              --trace-dir D [--chunk N] [--payload hash|stats|full] \\
              [--kv-bug LAYER:POSITION]

The math of GRETA's CPU reference (runtime/lib/CpuKernels.cpp): RMSNorm
(sum of squares in f64, the rest in f32), rotary embeddings in HF's
rotate-half convention, grouped-query causal attention over a KV cache,
SwiGLU. Every GRETA stage is written with greta_trace.Writer under the
meaning GRETA gives it (models/llama-tiny/model.mlir): embed_out, then per
layer residual_pre_attn, attn_in, q/k_pre_rope, v_proj, q/k_post_rope,
attn_out (the o_proj output), residual_post_attn, ffn_norm_in, mlp_out
(down_proj), residual_post_mlp, and the logits of the last layer. The
writer honours the GRETA_TRACE_* filter variables that greta-bisect sets.

--kv-bug LAYER:POSITION plants a KV-cache bug: in that layer, the value row
cached for every position >= POSITION is the previous position's (a stale
write), so attn_out of that layer is the first tensor to go wrong, from that
position on.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

try:
    import greta_trace
except ImportError:  # run from a checkout without installing the package
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "..", "..", "python"))
    import greta_trace

f32 = np.float32
_ST_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
              "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def load_safetensors(path):
    """{name: f32 array} of a safetensors file (F32, F64, F16, BF16)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = np.frombuffer(data, _ST_DTYPES[info["dtype"]], (b - a) //
                            _ST_DTYPES[info["dtype"]].itemsize, 8 + n + a)
        if info["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw.astype(f32).reshape(info["shape"])
    return out


def rms_norm(x, w, eps):
    var = ((x.astype(np.float64) ** 2).sum(axis=1) / x.shape[1]).astype(f32)
    r = f32(1) / np.sqrt(var + f32(eps))
    return w * (x * r[:, None])


def rope(x, positions, theta, head_dim):
    half = head_dim // 2
    exponents = np.arange(0, head_dim, 2, dtype=f32) / f32(head_dim)
    inv_freq = f32(1) / np.power(f32(theta), exponents)
    angle = positions.astype(f32)[:, None] * inv_freq[None, :]
    c, s = np.cos(angle), np.sin(angle)
    h = x.reshape(x.shape[0], -1, head_dim)
    lo, hi = h[..., :half], h[..., half:]
    out = np.concatenate([lo * c[:, None] - hi * s[:, None],
                          hi * c[:, None] + lo * s[:, None]], axis=-1)
    return out.reshape(x.shape)


def silu_mul(g, u):
    return (g / (f32(1) + np.exp(-g))) * u


class Llama:
    def __init__(self, config, weights):
        self.c = config
        self.w = weights
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads", self.heads)
        self.head_dim = config.get("head_dim",
                                   config["hidden_size"] // self.heads)
        self.eps = config["rms_norm_eps"]
        self.theta = config.get("rope_theta", 10000.0)
        self.cache = [None] * self.layers  # (k, v) of positions [0, filled)
        self.kv_bug = None

    def attention(self, layer, q, k, v, positions):
        """Causal GQA over the cache, which this call's rows extend."""
        kc, vc = self.cache[layer] if self.cache[layer] else (
            np.zeros((0, k.shape[1]), f32), np.zeros((0, v.shape[1]), f32))
        v_cached = v.copy()
        if self.kv_bug and self.kv_bug[0] == layer:
            bug_from = self.kv_bug[1]
            prev = np.concatenate([vc[-1:] if len(vc) else v[:1], v[:-1]])
            stale = positions >= bug_from
            v_cached[stale] = prev[stale]  # the planted stale write
        kc, vc = np.concatenate([kc, k]), np.concatenate([vc, v_cached])
        self.cache[layer] = (kc, vc)
        d, group = self.head_dim, self.heads // self.kv_heads
        scale = f32(1.0 / np.sqrt(d))
        out = np.empty_like(q)
        for h in range(self.heads):
            kh = kc[:, (h // group) * d:(h // group + 1) * d]
            vh = vc[:, (h // group) * d:(h // group + 1) * d]
            s = (q[:, h * d:(h + 1) * d] @ kh.T) * scale
            s[np.arange(len(kc))[None, :] > positions[:, None]] = -np.inf
            s = np.exp(s - s.max(axis=1, keepdims=True))
            p = s / s.sum(axis=1, keepdims=True)
            out[:, h * d:(h + 1) * d] = p @ vh
        return out

    def forward(self, ids, positions, w):
        """One forward call over `ids` at `positions`; traces through `w`."""
        W, last = self.w, self.layers - 1
        x = W["model.embed_tokens.weight"][ids]
        w.tensor("embed_out", 0, x, positions)
        for i in range(self.layers):
            p = f"model.layers.{i}."
            w.tensor("residual_pre_attn", i, x, positions)
            h = rms_norm(x, W[p + "input_layernorm.weight"], self.eps)
            w.tensor("attn_in", i, h, positions)
            q = h @ W[p + "self_attn.q_proj.weight"].T
            k = h @ W[p + "self_attn.k_proj.weight"].T
            v = h @ W[p + "self_attn.v_proj.weight"].T
            w.tensor("q_pre_rope", i, q, positions)
            w.tensor("k_pre_rope", i, k, positions)
            w.tensor("v_proj", i, v, positions)
            q = rope(q, positions, self.theta, self.head_dim)
            k = rope(k, positions, self.theta, self.head_dim)
            w.tensor("q_post_rope", i, q, positions)
            w.tensor("k_post_rope", i, k, positions)
            a = self.attention(i, q, k, v, positions)
            o = a @ W[p + "self_attn.o_proj.weight"].T
            w.tensor("attn_out", i, o, positions)
            x = x + o
            w.tensor("residual_post_attn", i, x, positions)
            h = rms_norm(x, W[p + "post_attention_layernorm.weight"], self.eps)
            w.tensor("ffn_norm_in", i, h, positions)
            g = h @ W[p + "mlp.gate_proj.weight"].T
            u = h @ W[p + "mlp.up_proj.weight"].T
            m = silu_mul(g, u) @ W[p + "mlp.down_proj.weight"].T
            w.tensor("mlp_out", i, m, positions)
            x = x + m
            w.tensor("residual_post_mlp", i, x, positions)
        h = rms_norm(x, W["model.norm.weight"], self.eps)
        head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
        logits = h @ head.T
        w.tensor("logits", last, logits, positions)
        return logits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="HF config.json")
    ap.add_argument("--weights", required=True, help="safetensors file")
    ap.add_argument("--prompt", required=True,
                    help="JSON list of token ids (models/prompts/*.json)")
    ap.add_argument("--trace-dir", required=True)
    ap.add_argument("--chunk", type=int, default=0,
                    help="positions per forward call (default: the prompt)")
    ap.add_argument("--payload", default="hash",
                    choices=greta_trace.PAYLOADS,
                    help="payload unless GRETA_TRACE_PAYLOAD says otherwise")
    ap.add_argument("--kv-bug", metavar="LAYER:POSITION",
                    help="plant the stale KV-cache write (see above)")
    args = ap.parse_args(argv)
    with open(args.config) as f:
        config = json.load(f)
    with open(args.prompt) as f:
        ids = np.array(json.load(f), dtype=np.int64)
    model = Llama(config, load_safetensors(args.weights))
    if args.kv_bug:
        layer, _, position = args.kv_bug.partition(":")
        model.kv_bug = (int(layer), int(position))
    name = os.path.splitext(os.path.basename(args.prompt))[0]
    weights_digest, tensor_digests = greta_trace.weights_digests(args.weights)
    try:
        writer = greta_trace.Writer(
            args.trace_dir, token_count=len(ids), overwrite=True,
            model=os.path.basename(os.path.dirname(os.path.abspath(
                args.config))),
            # What this engine ran: the HF config, not GRETA's model IR.
            model_digest=greta_trace.file_digest(args.config),
            weights_digest=weights_digest,
            weights_tensor_digests=tensor_digests,
            prompt_name=name, prompt_digest=greta_trace.prompt_digest(ids),
            backend="numpy", precision="f32",
            tool_version="numpy-engine " + greta_trace.__version__,
            payload=args.payload)
    except (greta_trace.FilterError, greta_trace.WriterError) as e:
        print(f"engine.py: error: {e}", file=sys.stderr)
        return 2
    chunk = args.chunk or len(ids)
    with writer:
        for start in range(0, len(ids), chunk):
            positions = np.arange(start, min(len(ids), start + chunk))
            logits = model.forward(ids[positions], positions, writer)
    top = np.argsort(-logits[-1], kind="stable")[:5]
    print(f"numpy-engine: {len(ids)} tokens, top-5 next tokens "
          f"{top.tolist()}, trace: {writer.records} records in "
          f"{args.trace_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
