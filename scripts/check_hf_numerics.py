#!/usr/bin/env python3
"""Check GRETA's CPU numerics against HF transformers' LlamaForCausalLM.

Runs the same safetensors and prompt through transformers (f32, eager
attention, CPU), captures every residual-stream stage GRETA traces with
forward hooks, and compares each record of a GRETA trace written with
`--payload full` by relative L2 error. Passes when every record is within
--tol (default 1e-4, issue 3's bound).

    greta-run model.mlir --weights W --prompt P --trace-dir T --payload full \
        --positions 0,100,last
    python3 scripts/check_hf_numerics.py --config models/llama-tiny/config.json \
        --weights W --prompt P --trace T [--json out.json]

Needs torch, transformers, numpy and python/greta_trace.py (GRETA's reader).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import greta_trace  # noqa: E402


def capture_hf(config_path, weights_path, ids):
    import torch
    import transformers
    from transformers.models.llama import modeling_llama

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(config_path, os.path.join(d, "config.json"))
        os.symlink(os.path.abspath(weights_path), os.path.join(d, "model.safetensors"))
        try:  # transformers >= 5 names it dtype
            model = transformers.LlamaForCausalLM.from_pretrained(
                d, dtype=torch.float32, attn_implementation="eager")
        except TypeError:
            model = transformers.LlamaForCausalLM.from_pretrained(
                d, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    cap = {}  # (stage, layer) -> np.ndarray [seq, features]

    def put(stage, layer, t):
        t = t.detach().to(torch.float64)
        if t.dim() == 3:  # [batch, seq, features]
            t = t[0]
        cap[(stage, layer)] = t.numpy()

    hooks = []
    m = model.model
    hooks.append(m.embed_tokens.register_forward_hook(
        lambda mod, a, out: put("embed_out", 0, out)))
    current = {"layer": None}
    for li, layer in enumerate(m.layers):
        def pre(mod, args, kwargs, li=li):
            h = args[0] if args else kwargs["hidden_states"]
            current["layer"] = li
            put("residual_pre_attn", li, h)
        hooks.append(layer.register_forward_pre_hook(pre, with_kwargs=True))

        def post(mod, args, kwargs, out, li=li):
            put("residual_post_mlp", li, out[0] if isinstance(out, tuple) else out)
        hooks.append(layer.register_forward_hook(post, with_kwargs=True))
        hooks.append(layer.input_layernorm.register_forward_hook(
            lambda mod, a, out, li=li: put("attn_in", li, out)))
        hooks.append(layer.self_attn.q_proj.register_forward_hook(
            lambda mod, a, out, li=li: put("q_pre_rope", li, out)))
        hooks.append(layer.self_attn.k_proj.register_forward_hook(
            lambda mod, a, out, li=li: put("k_pre_rope", li, out)))
        hooks.append(layer.self_attn.o_proj.register_forward_hook(
            lambda mod, a, out, li=li: put("attn_out", li, out)))
        hooks.append(layer.post_attention_layernorm.register_forward_pre_hook(
            lambda mod, a, li=li: put("residual_post_attn", li, a[0])))
        hooks.append(layer.post_attention_layernorm.register_forward_hook(
            lambda mod, a, out, li=li: put("ffn_norm_in", li, out)))
        hooks.append(layer.mlp.register_forward_hook(
            lambda mod, a, out, li=li: put("mlp_out", li, out)))

    # RoPE happens inside attention: wrap the function the module calls.
    original_rope = modeling_llama.apply_rotary_pos_emb

    def rope(q, k, *args, **kwargs):
        qo, ko = original_rope(q, k, *args, **kwargs)
        li = current["layer"]
        # [batch, heads, seq, head_dim] -> [seq, heads * head_dim] (GRETA's layout)
        for name, t in (("q_post_rope", qo), ("k_post_rope", ko)):
            b, h, s, d = t.shape
            put(name, li, t[0].permute(1, 0, 2).reshape(s, h * d))
        return qo, ko
    modeling_llama.apply_rotary_pos_emb = rope
    try:
        with torch.no_grad():
            out = model(torch.tensor([ids], dtype=torch.long))
    finally:
        modeling_llama.apply_rotary_pos_emb = original_rope
        for h in hooks:
            h.remove()
    put("logits", len(m.layers) - 1, out.logits)
    return cap, transformers.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--trace", required=True, help="GRETA trace written with --payload full")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--json", help="write the per-stage results here")
    args = ap.parse_args()

    with open(args.prompt) as f:
        ids = json.load(f)
    trace = greta_trace.read(args.trace)
    hf, version = capture_hf(args.config, args.weights, ids)

    worst = {}  # stage -> (rel_l2, layer, position)
    checked = 0
    missing_values = 0
    for rec in trace.records:
        if rec.values is None:
            missing_values += 1
            continue
        ref = hf[(rec.stage, rec.layer)][rec.position]
        got = np.asarray(rec.values, dtype=np.float64).reshape(ref.shape)
        rel = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
        checked += 1
        if rel > worst.get(rec.stage, (-1,))[0]:
            worst[rec.stage] = (rel, rec.layer, rec.position)
    if checked == 0:
        sys.exit("no record with values in %s: trace it with --payload full" % args.trace)

    m = trace.manifest
    print("GRETA (%s %s) vs HF transformers %s LlamaForCausalLM (CPU f32, eager)"
          % (m.get("backend", "?"), m.get("precision", "?"), version))
    print("records compared: %d (%d without values skipped)" % (checked, missing_values))
    print("| stage | worst relative L2 | at layer | position | within %g |" % args.tol)
    print("|---|---|---|---|---|")
    ok = True
    for stage, (rel, layer, pos) in worst.items():
        good = rel <= args.tol
        ok &= good
        print("| %s | %.3e | %d | %d | %s |" % (stage, rel, layer, pos, "yes" if good else "NO"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"transformers": version, "tol": args.tol, "records": checked,
                       "worst": {s: {"rel_l2": v[0], "layer": v[1], "position": v[2]}
                                 for s, v in worst.items()}, "pass": ok}, f, indent=2)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
