#!/usr/bin/env python3
"""PyTorch eager Llama forward (HF LlamaForCausalLM eager semantics) over a
safetensors file: the peer greta-run is measured against in bench/cpu.

    torch_llama.py CONFIG WEIGHTS PROMPT [--repeat N] [--threads T]

Prints one line per timed forward ("forward_s <seconds>") and the last
position's top-5 token ids, so the two implementations can be checked to
agree before they are timed.
"""
import argparse
import json
import struct
import time

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.astype(np.float32).reshape(info["shape"]))
    return out


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(cfg, W, ids):
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim", cfg["hidden_size"] // H)
    eps = cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta", 10000.0)
    S = ids.shape[0]
    pos = torch.arange(S)
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    freqs = pos[:, None].float() * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]
    mask = torch.full((S, S), float("-inf")).triu(1)
    x = W["model.embed_tokens.weight"][ids]
    for L in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % L
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(S, H, D).transpose(0, 1)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).view(S, KV, D).transpose(0, 1)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(S, KV, D).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        att = torch.softmax((q @ k.transpose(1, 2)) / D ** 0.5 + mask, dim=-1)
        a = (att @ v).transpose(0, 1).reshape(S, H * D)
        x = x + a @ W[p + "self_attn.o_proj.weight"].T
        f = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = f @ W[p + "mlp.gate_proj.weight"].T
        u = f @ W[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ W[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return x @ head.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("weights")
    ap.add_argument("prompt")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = json.load(open(args.config))
    W = load_safetensors(args.weights)
    ids = torch.tensor(json.load(open(args.prompt)), dtype=torch.long)
    with torch.no_grad():
        logits = forward(cfg, W, ids)  # warm-up
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            logits = forward(cfg, W, ids)
            print("forward_s %.6f" % (time.perf_counter() - t0))
    top = torch.topk(logits[-1], 5).indices.tolist()
    print("top5 " + " ".join(map(str, top)))


if __name__ == "__main__":
    main()
