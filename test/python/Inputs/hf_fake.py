"""A stand-in for HF transformers 5 models, in numpy, for testing
greta_trace.hf's hooks where torch is not installed: the same module tree
(model.layers[i].self_attn.q_proj, ..., lm_head), modules called as torch
calls them (forward pre-hooks with or without kwargs, then forward, then
forward hooks, each removable), and the attention calling
apply_rotary_pos_emb through this module's globals as modeling_llama.py
does. Families: llama, phi3 (fused qkv_proj), mixtral (a router returning
(logits, scores, ids) and 3-D experts).
"""
import numpy as np


class Handle:
    def __init__(self, hooks, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self):
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)


class Module:
    def __init__(self):
        self._pre, self._post = [], []

    def named_children(self):
        return [(k, v) for k, v in vars(self).items()
                if isinstance(v, (Module, ModuleList))]

    def register_forward_pre_hook(self, hook, with_kwargs=False):
        entry = (hook, with_kwargs)
        self._pre.append(entry)
        return Handle(self._pre, entry)

    def register_forward_hook(self, hook):
        self._post.append(hook)
        return Handle(self._post, hook)

    def __call__(self, *args, **kwargs):
        # As torch.nn.Module: a hook's non-None result replaces the inputs
        # (pre-hooks) or the output (forward hooks).
        for hook, with_kwargs in list(self._pre):
            if with_kwargs:
                r = hook(self, args, kwargs)
                if r is not None:
                    args, kwargs = r
            else:
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._post):
            r = hook(self, args, out)
            if r is not None:
                out = r
        return out


class ModuleList(list):
    def named_children(self):
        return [(str(i), m) for i, m in enumerate(self)]


class Linear(Module):
    def __init__(self, rng, n_in, n_out, bias=False):
        super().__init__()
        self.w = rng.normal(0, 0.2, (n_out, n_in)).astype(np.float32)
        self.b = (rng.normal(0, 0.1, n_out).astype(np.float32) if bias
                  else None)

    def forward(self, x):
        y = x @ self.w.T
        return y + self.b if self.b is not None else y


class RMSNorm(Module):
    def __init__(self, rng, n):
        super().__init__()
        self.w = (1 + rng.normal(0, 0.1, n)).astype(np.float32)

    def forward(self, x):
        v = np.mean(x.astype(np.float32) ** 2, axis=-1, keepdims=True)
        return self.w * (x / np.sqrt(v + 1e-6))


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos, sin = cos[:, None], sin[:, None]
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class Attention(Module):
    def __init__(self, rng, c, fused, rope_via_module=True):
        super().__init__()
        self.c, self.fused, self.via = c, fused, rope_via_module
        h, q, kv = c["hidden_size"], c["q"], c["kv"]
        if fused:
            self.qkv_proj = Linear(rng, h, q + 2 * kv)
        else:
            self.q_proj = Linear(rng, h, q, bias=True)
            self.k_proj = Linear(rng, h, kv, bias=True)
            self.v_proj = Linear(rng, h, kv, bias=True)
        self.o_proj = Linear(rng, q, h)

    def forward(self, hidden_states, position_embeddings=None):
        c, d = self.c, self.c["head_dim"]
        s = hidden_states.shape[1]
        if self.fused:
            qkv = self.qkv_proj(hidden_states)
            q, k, v = (qkv[..., :c["q"]], qkv[..., c["q"]:c["q"] + c["kv"]],
                       qkv[..., c["q"] + c["kv"]:])
        else:
            q, k, v = (self.q_proj(hidden_states), self.k_proj(hidden_states),
                       self.v_proj(hidden_states))
        q, k, v = (t.reshape(1, s, -1, d).transpose(0, 2, 1, 3)
                   for t in (q, k, v))
        cos, sin = position_embeddings
        if self.via:  # as modeling_llama.py: through the module's globals
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
        else:
            q, k = _ROPE(q, k, cos, sin)
        rep = q.shape[1] // k.shape[1]
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
        a = a + np.triu(np.full((s, s), -np.inf, np.float32), 1)
        a = np.exp(a - a.max(-1, keepdims=True))
        a = a / a.sum(-1, keepdims=True)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(1, s, -1)
        return self.o_proj(o), None


_ROPE = apply_rotary_pos_emb  # a private reference: no hook sees its calls


def silu(x):
    return x / (1 + np.exp(-x))


class MLP(Module):
    def __init__(self, rng, h, i):
        super().__init__()
        self.gate_proj, self.up_proj = Linear(rng, h, i), Linear(rng, h, i)
        self.down_proj = Linear(rng, i, h)

    def forward(self, x):
        return self.down_proj(silu(self.gate_proj(x)) * self.up_proj(x))


class Router(Module):
    def __init__(self, rng, h, experts, k):
        super().__init__()
        self.w = rng.normal(0, 0.5, (experts, h)).astype(np.float32)
        self.k = k

    def forward(self, x):
        logits = x.reshape(-1, x.shape[-1]) @ self.w.T
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        ids = np.argsort(-p, axis=-1, kind="stable")[:, :self.k]
        top = np.take_along_axis(p, ids, -1)
        return logits, top / top.sum(-1, keepdims=True), ids


class Experts(Module):
    def __init__(self, rng, h, i, n):
        super().__init__()
        self.mlps = [MLP(rng, h, i) for _ in range(n)]

    def forward(self, x, ids, weights):
        out = np.zeros_like(x)
        for t in range(x.shape[0]):
            for j, e in enumerate(ids[t]):
                out[t] += weights[t, j] * self.mlps[e].forward(x[t:t + 1])[0]
        return out


class SparseMoe(Module):
    def __init__(self, rng, c):
        super().__init__()
        h = c["hidden_size"]
        self.gate = Router(rng, h, c["num_local_experts"],
                           c["num_experts_per_tok"])
        self.experts = Experts(rng, h, c["intermediate_size"],
                               c["num_local_experts"])

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        _, w, ids = self.gate(flat)
        return self.experts(flat, ids, w).reshape(x.shape)


class DecoderLayer(Module):
    def __init__(self, rng, c, fused, moe, via):
        super().__init__()
        h = c["hidden_size"]
        self.self_attn = Attention(rng, c, fused, via)
        self.mlp = SparseMoe(rng, c) if moe else MLP(rng, h,
                                                     c["intermediate_size"])
        self.input_layernorm = RMSNorm(rng, h)
        self.post_attention_layernorm = RMSNorm(rng, h)

    def forward(self, hidden_states, position_embeddings=None):
        r = hidden_states
        x, _ = self.self_attn(hidden_states=self.input_layernorm(r),
                              position_embeddings=position_embeddings)
        r = r + x
        return r + self.mlp(self.post_attention_layernorm(r))


class Model(Module):
    def __init__(self, rng, c, fused, moe, via):
        super().__init__()
        self.c = c
        self.embed = rng.normal(0, 1, (c["vocab_size"], c["hidden_size"])
                                ).astype(np.float32)
        self.layers = ModuleList(DecoderLayer(rng, c, fused, moe, via)
                                 for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(rng, c["hidden_size"])

    def forward(self, ids):
        x = self.embed[np.asarray(ids)][None]
        d = self.c["head_dim"]
        inv = inv_freq(self.c)
        freqs = np.outer(np.arange(len(ids), dtype=np.float32), inv)
        emb = np.concatenate([freqs, freqs], -1)[None]
        pe = (np.cos(emb), np.sin(emb))
        assert emb.shape[-1] == d
        for layer in self.layers:
            x = layer(x, position_embeddings=pe)
        return self.norm(x)


def inv_freq(c):
    d = c["head_dim"]
    return (1.0 / (10000.0 ** (np.arange(0, d, 2, dtype=np.float32) / d))
            ).astype(np.float32)


class CausalLM(Module):
    def __init__(self, c, seed=0, rope_via_module=True):
        super().__init__()
        rng = np.random.default_rng(seed)
        mt = c["model_type"]
        c = dict(c)
        c["head_dim"] = c.get("head_dim") or (c["hidden_size"]
                                             // c["num_attention_heads"])
        c["q"] = c["num_attention_heads"] * c["head_dim"]
        c["kv"] = c["num_key_value_heads"] * c["head_dim"]
        self.model = Model(rng, c, mt == "phi3", mt == "mixtral",
                           rope_via_module)
        self.lm_head = Linear(rng, c["hidden_size"], c["vocab_size"])

    def forward(self, input_ids):
        return self.lm_head(self.model(input_ids))
