#!/usr/bin/env python3
"""HF transformers as the yardstick for GPU precision: relative L2 of the
last position's logits of HF in fp16/bf16 (sdpa) against HF in fp32, on the
same weights and prompt as GRETA's GPU-vs-CPU comparison.

    hf_precision.py MODEL_DIR PROMPT.json DTYPE [DTYPE...]
"""
import json
import sys

import torch
from transformers import LlamaForCausalLM


def last_logits(model_dir, ids, dtype):
    m = LlamaForCausalLM.from_pretrained(model_dir, dtype=dtype,
                                         attn_implementation="sdpa").cuda().eval()
    with torch.inference_mode():
        out = m(input_ids=ids, logits_to_keep=1).logits[0, -1].double().cpu()
    del m
    torch.cuda.empty_cache()
    return out


def main():
    model_dir, prompt = sys.argv[1], sys.argv[2]
    with open(prompt) as f:
        ids = torch.tensor([json.load(f)], device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    ref = last_logits(model_dir, ids, torch.float32)
    for name in sys.argv[3:]:
        x = last_logits(model_dir, ids, getattr(torch, name))
        rel = ((x - ref).norm() / ref.norm()).item()
        top = torch.topk(x, 5).indices.tolist()
        print(f"  HF {name:9s} vs HF float32 ({model_dir.split('/')[-1]}): "
              f"relL2 {rel:.3e}  top5 {top}")


if __name__ == "__main__":
    main()
