"""A float64 numpy forward pass of the dense families, written from HF
transformers' modeling code (modeling_rope_utils, models/{llama, mistral,
qwen2, qwen3, gemma, phi3}), and a check of a GRETA trace against it.

  families_ref.py CONFIG WEIGHTS PROMPT TRACE [--tol 1e-9]

TRACE is a GRETA run of the model imported from CONFIG with --precision f64
--payload full --positions all. Every traced row must be within a relative
L2 error of --tol of this reference (both are f64: they differ by rounding
order only). Prints one line per stage with the worst error, then `ok`;
exits 1 naming the first row outside the bound.

Independent of the importer and the kernels on purpose: it reads config.json
itself, so a misread key or a wrong kernel shows up as a difference.
"""
import argparse
import json
import math
import struct
import sys

import numpy as np

import greta_trace


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[base + b:base + end]
        dt = e["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, "<f4").astype(np.float64)
        elif dt == "F64":
            a = np.frombuffer(raw, "<f8").copy()
        elif dt == "F16":
            a = np.frombuffer(raw, "<f2").astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            a = u.view("<f4").astype(np.float64)
        else:
            raise SystemExit(f"{path}: tensor {name}: dtype {dt}")
        out[name] = a.reshape(e["shape"])
    return out


def rope_params(c, head_dim):
    """HF's (inv_freq function of seq_len, attention_factor)."""
    rp = c.get("rope_parameters") or c.get("rope_scaling") or {}
    base = rp.get("rope_theta", c.get("rope_theta", 10000.0))
    kind = rp.get("rope_type", rp.get("type", "default"))
    d = head_dim
    exps = np.arange(0, d, 2, dtype=np.float64) / d
    default = 1.0 / base ** exps
    maxpos = c["max_position_embeddings"]
    orig = rp.get("original_max_position_embeddings",
                  c.get("original_max_position_embeddings"))
    if kind == "default":
        return (lambda L: default), 1.0
    if kind == "linear":
        return (lambda L: default / rp["factor"]), 1.0
    if kind == "dynamic":
        f = rp["factor"]

        def dyn(L):
            L = max(L, maxpos)
            b = base * ((f * L / maxpos) - (f - 1)) ** (d / (d - 2))
            return 1.0 / b ** exps
        return dyn, 1.0
    if kind == "llama3":
        f, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        old = orig
        wavelen = 2 * math.pi / default
        inv = np.where(wavelen > old / lo, default / f, default)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * inv / f + smooth * inv
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        inv = np.where(medium, smoothed, inv)
        return (lambda L: inv), 1.0
    if kind == "yarn":
        f = rp.get("factor") or maxpos / orig

        def mscale(s, m=1.0):
            return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
        af = rp.get("attention_factor")
        if af is None:
            m, mad = rp.get("mscale"), rp.get("mscale_all_dim")
            af = mscale(f, m) / mscale(f, mad) if m and mad else mscale(f)
        bf, bs = rp.get("beta_fast") or 32, rp.get("beta_slow") or 1

        def cdim(rot):
            return d * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))
        lo, hi = cdim(bf), cdim(bs)
        if rp.get("truncate", True):
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = max(lo, 0), min(hi, d - 1)
        if lo == hi:
            hi += 0.001
        ramp = np.clip((np.arange(d // 2) - lo) / (hi - lo), 0, 1)
        extra = 1 - ramp
        pf = base ** exps
        inv = (1 / (f * pf)) * (1 - extra) + (1 / pf) * extra
        return (lambda L: inv), af
    if kind == "longrope":
        orig = orig or maxpos
        f = rp.get("factor") or maxpos / orig
        af = rp.get("attention_factor")
        if af is None:
            af = 1.0 if f <= 1 else math.sqrt(1 + math.log(f) / math.log(orig))
        short = 1.0 / (np.array(rp["short_factor"]) * base ** exps)
        long_ = 1.0 / (np.array(rp["long_factor"]) * base ** exps)
        return (lambda L: long_ if L > orig else short), af
    raise SystemExit(f"rope_type {kind}")


def forward(c, w, ids):
    mt = c["model_type"]
    H, nh = c["hidden_size"], c["num_attention_heads"]
    kvh = c.get("num_key_value_heads") or nh
    d = c.get("head_dim") or H // nh
    eps = c["rms_norm_eps"]
    n = len(ids)
    pos = np.arange(n)
    gemma = mt == "gemma"
    out = {}

    def put(stage, layer, x):
        out[(stage, layer)] = x.copy()

    def norm(x, wt, offset=0.0):
        y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
        return y * (offset + wt)

    def lin(x, name, bias):
        y = x @ w[name + ".weight"].T
        if bias:
            y = y + w[name + ".bias"]
        return y

    inv_of, af = rope_params(c, d)
    inv = inv_of(n)

    def rope(x):
        ang = pos[:, None] * inv[None, :]
        cos, sin = np.cos(ang) * af, np.sin(ang) * af
        x = x.reshape(n, -1, d)
        x1, x2 = x[..., :d // 2], x[..., d // 2:]
        cc, ss = cos[:, None, :], sin[:, None, :]
        return np.concatenate([x1 * cc - x2 * ss, x2 * cc + x1 * ss],
                              axis=-1).reshape(n, -1)

    window = c.get("sliding_window") if mt in ("mistral", "phi3") else None
    x = w["model.embed_tokens.weight"][ids]
    if gemma:
        x = x * math.sqrt(H)
    put("embed_out", 0, x)
    L = c["num_hidden_layers"]
    for l in range(L):
        p = f"model.layers.{l}."
        put("residual_pre_attn", l, x)
        h = norm(x, w[p + "input_layernorm.weight"], 1.0 if gemma else 0.0)
        put("attn_in", l, h)
        qkv_bias = mt == "qwen2" or (mt in ("llama", "qwen3", "gemma")
                                     and c.get("attention_bias", False))
        o_bias = mt in ("llama", "qwen3", "gemma") and c.get("attention_bias",
                                                              False)
        if mt == "phi3":
            qkv = lin(h, p + "self_attn.qkv_proj", False)
            q, k, v = (qkv[:, :nh * d], qkv[:, nh * d:(nh + kvh) * d],
                       qkv[:, (nh + kvh) * d:])
        else:
            q = lin(h, p + "self_attn.q_proj", qkv_bias)
            k = lin(h, p + "self_attn.k_proj", qkv_bias)
            v = lin(h, p + "self_attn.v_proj", qkv_bias)
        if mt == "qwen3":
            q = norm(q.reshape(n, nh, d), w[p + "self_attn.q_norm.weight"])
            k = norm(k.reshape(n, kvh, d), w[p + "self_attn.k_norm.weight"])
            q, k = q.reshape(n, -1), k.reshape(n, -1)
        put("q_pre_rope", l, q)
        put("k_pre_rope", l, k)
        put("v_proj", l, v)
        qr, kr = rope(q), rope(k)
        put("q_post_rope", l, qr)
        put("k_post_rope", l, kr)
        qh = qr.reshape(n, nh, d)
        kh = kr.reshape(n, kvh, d)
        vh = v.reshape(n, kvh, d)
        att = np.zeros((n, nh, d))
        for hd in range(nh):
            g = hd // (nh // kvh)
            s = qh[:, hd, :] @ kh[:, g, :].T / math.sqrt(d)
            i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
            visible = j <= i
            if window:
                visible &= j > i - window
            s = np.where(visible, s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s = s / s.sum(axis=1, keepdims=True)
            att[:, hd, :] = s @ vh[:, g, :]
        o = lin(att.reshape(n, -1), p + "self_attn.o_proj", o_bias)
        put("attn_out", l, o)
        x = x + o
        put("residual_post_attn", l, x)
        f = norm(x, w[p + "post_attention_layernorm.weight"],
                 1.0 if gemma else 0.0)
        put("ffn_norm_in", l, f)
        mb = mt == "llama" and c.get("mlp_bias", False)
        if mt == "phi3":
            gu = lin(f, p + "mlp.gate_up_proj", False)
            gate, up = gu[:, :gu.shape[1] // 2], gu[:, gu.shape[1] // 2:]
        else:
            gate = lin(f, p + "mlp.gate_proj", mb)
            up = lin(f, p + "mlp.up_proj", mb)
        if gemma:
            act = 0.5 * gate * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                            (gate + 0.044715 * gate ** 3)))
        else:
            act = gate / (1 + np.exp(-gate))
        m = lin(act * up, p + "mlp.down_proj", mb)
        put("mlp_out", l, m)
        x = x + m
        put("residual_post_mlp", l, x)
    hN = norm(x, w["model.norm.weight"], 1.0 if gemma else 0.0)
    head = (w["model.embed_tokens.weight"]
            if c.get("tie_word_embeddings", gemma)
            else w["lm_head.weight"])
    put("logits", L - 1, hN @ head.T)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("weights")
    ap.add_argument("prompt")
    ap.add_argument("trace")
    ap.add_argument("--tol", type=float, default=1e-9)
    a = ap.parse_args()
    with open(a.config) as f:
        c = json.load(f)
    with open(a.prompt) as f:
        ids = np.array(json.load(f), dtype=np.int64)
    ref = forward(c, load_safetensors(a.weights), ids)
    t = greta_trace.read(a.trace)
    worst = {}
    for (stage, layer), want in ref.items():
        positions, rows = t.values(stage, layer)
        for p, row in zip(positions.tolist(), rows):
            r = want[p]
            err = np.linalg.norm(row - r) / max(np.linalg.norm(r), 1e-300)
            worst[stage] = max(worst.get(stage, 0.0), err)
            if not err <= a.tol:
                sys.exit(f"{stage} L{layer} p{p}: relative L2 {err:.3g} > "
                         f"{a.tol:g}")
    for stage in greta_trace.EXECUTION_ORDER:
        if stage in worst:
            print(f"{stage}: {worst[stage]:.2e}")
    print("ok")


if __name__ == "__main__":
    main()
