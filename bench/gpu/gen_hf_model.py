#!/usr/bin/env python3
"""Random HF Llama model + prompts for GPU runs on a machine without LLVM.

The GPU host has no greta-translate, and the TinyLlama-1.1B-shaped weights
(2.2 GB in f16) are too big to carry there, so they are made there with HF
transformers from the same config.json that greta-translate imported:
`LlamaForCausalLM(config)` with torch.manual_seed(SEED) (HF's init:
normal(0, initializer_range) matrices, ones for norms; the same distribution
as `greta-translate --gen-random-weights`), saved as one safetensors file with
HF's parameter names (the names the greta import uses) plus the config, so
HF itself loads the very same model for the comparison.

    gen_hf_model.py --config models/tinyllama-1.1b/config.json --out DIR \
        [--dtype float16] [--seed 0] [--prompts 64,827,16384]

Writes DIR/config.json, DIR/model.safetensors, DIR/prompt_<N>.json (uniform
random token ids, numpy seed SEED). With --max-shard-size (e.g. 5GB) the
weights are written by HF's save_pretrained instead: shards plus
model.safetensors.index.json, as checkpoints of 7B and up ship.
"""
import argparse
import json
import os

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import (AutoConfig, AutoModelForCausalLM, LlamaConfig,
                          LlamaForCausalLM)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="float16",
                    choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompts", default="")
    ap.add_argument("--max-shard-size", default="",
                    help="write HF shards + index (save_pretrained) of at most this size")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with open(a.config) as f:
        raw = json.load(f)
    # Llama as before; another model_type (Mixtral: bench/gpu/moe_device.sh)
    # through HF's auto classes, the same init under the same seed.
    llama = raw.get("model_type", "llama") == "llama"
    cfg = (LlamaConfig.from_dict(raw) if llama else
           AutoConfig.for_model(**raw))
    torch.manual_seed(a.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = (LlamaForCausalLM(cfg) if llama else
                 AutoModelForCausalLM.from_config(cfg))
    model = model.to(getattr(torch, a.dtype)).eval()
    state = model.state_dict()
    for name, t in state.items():  # on the device: fast for 8B parameters
        if not torch.isfinite(t).all():
            raise SystemExit(f"{name}: non-finite initial weights")
    std = state["model.layers.0.self_attn.q_proj.weight"].float().std().item()
    cfg.torch_dtype = a.dtype
    # Not Llama: always save_pretrained, which writes MoE experts under the
    # per-expert names of published checkpoints (transformers 5 holds them
    # fused in the state dict; docs/MODELS.md, the HF references).
    if a.max_shard_size or not llama:  # model.config is cfg: torch_dtype
        model.save_pretrained(a.out, max_shard_size=a.max_shard_size or "50GB")
    else:
        save_file({k: v.contiguous().cpu() for k, v in state.items()},
                  os.path.join(a.out, "model.safetensors"))
        cfg.save_pretrained(a.out)
    n = sum(t.numel() for t in state.values())
    print(f"{a.out}: {len(state)} tensors, {n / 1e9:.3f} B parameters, "
          f"{a.dtype}, q_proj std {std:.4f}")
    rng = np.random.default_rng(a.seed)
    for length in [int(x) for x in a.prompts.split(",") if x]:
        ids = rng.integers(0, cfg.vocab_size, size=length).tolist()
        with open(os.path.join(a.out, f"prompt_{length}.json"), "w") as f:
            json.dump(ids, f)


if __name__ == "__main__":
    main()
