#!/usr/bin/env python3
"""HF transformers reference checkpoints and activations for the model
families GRETA imports (docs/MODELS.md, "Reference data from HF").

On the GPU machine (torch, transformers 5.x), for each family: a small
config, HF's own random init (torch.manual_seed), then the 1-D parameters
(norm weights, biases: HF makes them ones or zeros) moved by seeded noise so
that a wrong norm or a dropped bias shows; save_pretrained sharded (an index
and >= 2 shards, HF's tensor names) in the family's dtype; reloaded in fp32
on the CPU and run on a fixed 48-token prompt with every point of
greta_trace.hf_table captured (fp32, all positions); the values' meaning
checked (residual sums, RoPE from the reported inv_freq, router top-k);
then fp32, fp16 and bf16 runs of the same checkpoint on CUDA and their
errors against the CPU fp32 values.

    make_refs.py --out DIR [--families a,b] [--no-cuda]   (device)
    make_refs.py --check                                  (no torch)

Writes DIR/models/hf-refs/: prompt.json, manifest.json and per family
checkpoint/ (as save_pretrained wrote it), activations.safetensors,
activations.json, lowp_error.json. --check validates the family list and
the configs against the HF stage table and estimates the committed size.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from greta_trace import hf, hf_refs, hf_table  # noqa: E402

SEED = 0
PROMPT_LEN = 48
PROMPT_SEED = 7
ORIG = 32           # original_max_position_embeddings: 32..47 are past it
WINDOW = 16         # Mistral's sliding window
BUDGET = 5_000_000  # bytes committed, all families
NOISE = 0.1         # std of the noise added to 1-D parameters
EXPERT = 32         # an expert's intermediate size (the budget)

COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, intermediate_size=64, vocab_size=256,
              max_position_embeddings=256, rms_norm_eps=1e-6,
              rope_theta=10000.0, initializer_range=0.02,
              tie_word_embeddings=False)


def _family(name, model_type, dtype, config, legacy_rope=False, note=""):
    return {"name": name, "model_type": model_type, "dtype": dtype,
            "config": dict(COMMON, **config), "legacy_rope": legacy_rope,
            "note": note}


def _rope(**kw):
    return {"rope_parameters": kw}


# head_dim 16 != hidden/heads (8) where the family takes a head_dim; the
# others keep hidden/heads. Every dtype on disk appears.
FAMILIES = [
    _family("llama", "llama", "float32",
            dict(head_dim=16, tie_word_embeddings=True, attention_bias=True,
                 mlp_bias=True),
            note="tied embeddings, q/k/v/o and MLP biases"),
    _family("llama-rope-linear", "llama", "bfloat16",
            dict(head_dim=16, **_rope(rope_type="linear", factor=4.0)),
            legacy_rope=True,
            note="linear; config.json in the pre-5 spelling (rope_scaling)"),
    _family("llama-rope-dynamic", "llama", "float16",
            dict(head_dim=16, max_position_embeddings=ORIG,
                 **_rope(rope_type="dynamic", factor=4.0)),
            note="dynamic NTK: max_position_embeddings 32 < 48 tokens"),
    _family("llama-rope-llama3", "llama", "bfloat16",
            dict(head_dim=16, **_rope(
                rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                high_freq_factor=4.0, original_max_position_embeddings=ORIG)),
            note="llama3: high, medium (smoothed) and low frequencies"),
    _family("llama-rope-yarn", "llama", "float16",
            dict(head_dim=16, **_rope(
                rope_type="yarn", factor=8.0,
                original_max_position_embeddings=ORIG)),
            legacy_rope=True,
            note="yarn (factor = 256/32, beta 32/1); pre-5 spelling"),
    _family("llama-rope-longrope", "llama", "float32",
            dict(head_dim=16, **_rope(
                rope_type="longrope",
                short_factor=[1.0, 1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.0],
                long_factor=[1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0],
                original_max_position_embeddings=ORIG)),
            note="longrope on Llama: long factors (48 > 32 tokens)"),
    _family("mistral", "mistral", "bfloat16", dict(sliding_window=WINDOW),
            note="sliding window 16 < 48 tokens"),
    _family("qwen2", "qwen2", "float32", {}, note="q/k/v biases"),
    _family("qwen3", "qwen3", "bfloat16", dict(head_dim=16),
            note="per-head q_norm/k_norm before RoPE"),
    _family("gemma", "gemma", "float32",
            dict(head_dim=16, hidden_act="gelu_pytorch_tanh",
                 tie_word_embeddings=True, pad_token_id=0, bos_token_id=2,
                 eos_token_id=1),
            note="GeGLU (tanh), 1+w norms, embedding x sqrt(hidden), tied"),
    _family("phi3", "phi3", "float16",
            dict(original_max_position_embeddings=ORIG, pad_token_id=0,
                 bos_token_id=1, eos_token_id=2, **_rope(
                     rope_type="longrope",
                     short_factor=[1.0, 1.2, 1.5, 2.0],
                     long_factor=[1.0, 2.0, 4.0, 8.0],
                     original_max_position_embeddings=ORIG)),
            note="fused qkv_proj and gate_up_proj, longrope"),
    _family("mixtral", "mixtral", "bfloat16",
            dict(num_local_experts=4, num_experts_per_tok=2,
                 intermediate_size=EXPERT),
            note="4 experts, top-2, renormalised"),
    _family("qwen3-moe", "qwen3_moe", "bfloat16",
            dict(head_dim=16, num_experts=4, num_experts_per_tok=2,
                 norm_topk_prob=True, moe_intermediate_size=EXPERT),
            note="4 experts, top-2, norm_topk_prob, q/k norms"),
    _family("qwen2-moe", "qwen2_moe", "float16",
            dict(num_experts=4, num_experts_per_tok=2, norm_topk_prob=False,
                 moe_intermediate_size=EXPERT,
                 shared_expert_intermediate_size=EXPERT),
            note="4 experts, top-2 unnormalised, gated shared expert"),
]
BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def prompt_ids():
    """48 ids, seeded: 1 (BOS) then uniform in [3, vocab)."""
    rng = np.random.default_rng(PROMPT_SEED)
    rest = rng.integers(3, COMMON["vocab_size"], size=PROMPT_LEN - 1)
    return [1] + [int(i) for i in rest]


# -- the checks that run without torch -----------------------------------

def table_config(fam):
    """The config as the table reads it (model_type, dims)."""
    return dict(fam["config"], model_type=fam["model_type"])


def param_count(fam):
    """Parameters of the family's model (an estimate for --check)."""
    c = table_config(fam)
    d = hf_table.dims(c)
    h, inter = d["hidden"], c["intermediate_size"]
    attn = h * (2 * d["q"] + 2 * d["kv"]) + 2 * h
    if c.get("attention_bias") or fam["model_type"] in ("qwen2", "qwen2_moe"):
        attn += d["q"] + 2 * d["kv"]
    if fam["model_type"] in ("qwen3", "qwen3_moe"):
        attn += 2 * d["head_dim"]
    mlp = 3 * h * inter + (2 * inter + h if c.get("mlp_bias") else 0)
    if d["experts"]:
        mlp = d["experts"] * (3 * h * c.get("moe_intermediate_size", inter)
                              + h)
        mlp += 3 * h * c.get("shared_expert_intermediate_size", 0) + (
            h if c.get("shared_expert_intermediate_size") else 0)
    head = 0 if c.get("tie_word_embeddings") else d["vocab"] * h
    return d["vocab"] * h + d["layers"] * (attn + mlp) + h + head


def activation_bytes(fam):
    c = table_config(fam)
    d = hf_table.dims(c)
    cols = sum(d[p.width] for p, _ in hf_table.all_points(c))
    return 4 * PROMPT_LEN * cols + 8 * PROMPT_LEN + 4096


def check_family(fam):
    """Problems with a family's plan: the table must know it, every scaling
    must act on the prompt, factors must fit the rotary dims."""
    problems = []
    c = table_config(fam)
    try:
        hf_table.family(c)
        d = hf_table.dims(c)
    except hf_table.TableError as e:
        return [str(e)]
    rp = c.get("rope_parameters") or {}
    rt = rp.get("rope_type", "default")
    if rt in ("llama3", "yarn", "longrope") and not \
            rp.get("original_max_position_embeddings", 1 << 30) < PROMPT_LEN:
        problems.append(f"{rt}: original_max_position_embeddings must be < "
                        f"{PROMPT_LEN}")
    if rt == "dynamic" and not c["max_position_embeddings"] < PROMPT_LEN:
        problems.append(f"dynamic: max_position_embeddings must be < "
                        f"{PROMPT_LEN} for the scaling to act")
    if rt == "longrope":
        half = (c["hidden_size"] // c["num_attention_heads"]
                if fam["model_type"] == "phi3" else d["head_dim"]) // 2
        for k in ("short_factor", "long_factor"):
            if len(rp.get(k, ())) != half:
                problems.append(f"longrope {k}: {len(rp.get(k, ()))} values, "
                                f"the rotary dims need {half}")
    if c.get("sliding_window") and not c["sliding_window"] < PROMPT_LEN:
        problems.append("sliding_window must be < the prompt")
    if fam["dtype"] not in BYTES:
        problems.append(f"dtype {fam['dtype']}")
    return problems


def check(families):
    """--check: the plan, the problems, the estimated size; exit status."""
    bad, total = 0, 0
    print(f"{'family':22s} {'type':10s} {'dtype':9s} {'head':>4s} "
          f"{'params':>7s} {'est. bytes':>10s}  note")
    for fam in families:
        problems = check_family(fam)
        size = 0
        if not problems:
            # + the JSON files, the index, the shard and file headers
            size = (param_count(fam) * BYTES[fam["dtype"]]
                    + activation_bytes(fam) + 16000)
            total += size
            head = hf_table.dims(table_config(fam))["head_dim"]
        print(f"{fam['name']:22s} {fam['model_type']:10s} {fam['dtype']:9s} "
              f"{head if not problems else '?':>4} "
              f"{param_count(fam) if not problems else 0:>7d} {size:>10d}  "
              f"{fam['note']}")
        for p in problems:
            bad += 1
            print(f"  PROBLEM: {p}")
    dtypes = {f["dtype"] for f in families}
    if len(families) == len(FAMILIES) and dtypes != set(BYTES):
        bad += 1
        print(f"  PROBLEM: dtypes on disk {sorted(dtypes)}: all three needed")
    print(f"{len(families)} families, estimated {total} bytes committed "
          f"(budget {BUDGET}){'; OVER BUDGET' if total > BUDGET else ''}")
    return 1 if bad or total > BUDGET else 0


# -- the device side -----------------------------------------------------

def build(fam, torch, transformers):
    """HF's own init, seeded, then the 1-D parameters moved."""
    # A copy: configs standardize their rope dict in place.
    kwargs = json.loads(json.dumps(fam["config"]))
    config = transformers.AutoConfig.for_model(fam["model_type"], **kwargs)
    torch.manual_seed(SEED)
    model = transformers.AutoModelForCausalLM.from_config(config).float()
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.ndim == 1:
                p.add_(NOISE * torch.randn(p.shape, generator=gen))
    return model.eval()


def save(model, fam, ckpt, torch):
    """save_pretrained in the family's dtype, sharded; the pre-5 rope
    spelling if asked, checked to load back to the same parameters."""
    model = model.to(getattr(torch, fam["dtype"]))
    total = sum(t.numel() * t.element_size()
                for t in model.state_dict().values())
    model.save_pretrained(ckpt, max_shard_size=total // 3 + 1)
    kind, files = hf.weights_files(ckpt)
    if kind != "sharded" or len(files) < 2:
        raise hf.HFError(f"{fam['name']}: save_pretrained wrote {kind} "
                         f"({len(files)} files), expected >= 2 shards")
    cfg_path = os.path.join(ckpt, "config.json")
    with open(cfg_path) as f:
        saved = json.load(f)
    if fam["legacy_rope"]:
        if not isinstance(saved.get("rope_parameters"), dict):
            raise hf.HFError(f"{fam['name']}: config.json has no "
                             f"rope_parameters object to respell")
        rp = dict(saved.pop("rope_parameters"))
        saved["rope_theta"] = rp.pop("rope_theta")
        saved["rope_scaling"] = rp
        with open(cfg_path, "w") as f:
            f.write(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    return model, files


def load_fp32_cpu(ckpt, saved_model, fam, torch):
    """The checkpoint reloaded in fp32: its weights must be the saved ones
    widened, and its RoPE parameters the ones asked for."""
    model = hf.load_model(ckpt, "float32", "cpu")
    mine = saved_model.state_dict()
    for name, t in model.state_dict().items():
        if name in mine and not torch.equal(t, mine[name].float()):
            raise hf.HFError(f"{fam['name']}: '{name}' reloaded differs from "
                             f"what was saved")
    want = fam["config"].get("rope_parameters")
    got = model.config.rope_parameters
    if want and any(got.get(k) != v for k, v in want.items()):
        raise hf.HFError(f"{fam['name']}: rope_parameters reloaded as {got}, "
                         f"saved {want}")
    head = fam["config"].get("head_dim")
    q_out = model.model.layers[0].self_attn.o_proj.in_features
    if head and q_out != head * fam["config"]["num_attention_heads"]:
        raise hf.HFError(f"{fam['name']}: o_proj takes {q_out} inputs, "
                         f"head_dim {head} asked")
    return model


def capture_all(model, config, ids, device):
    """Every table point, as float32 numpy [tokens, width], by key."""
    got = {}

    def sink(p, layer, rows):
        got[hf_table.key(p, layer)] = rows.detach().float().cpu().numpy()

    with hf.Capture(model, config, len(ids), sink) as cap:
        out = hf.forward(model, ids, device)
        cap.check()
    logits = out.logits[0].detach().float().cpu().numpy()
    if not np.array_equal(logits, got["logits"]):
        raise hf.HFError("the captured logits are not the model's output")
    return got


def rope_info(model):
    rot = model.model.rotary_emb
    inv = rot.inv_freq.detach().float().cpu().numpy()
    return {"rope_type": rot.rope_type, "inv_freq": [float(x) for x in inv],
            "attention_scaling": float(rot.attention_scaling)}


def run_family(fam, ids, root, torch, transformers, use_cuda):
    d = os.path.join(root, fam["name"])
    ckpt = os.path.join(d, "checkpoint")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    model, files = save(build(fam, torch, transformers), fam, ckpt, torch)
    ref_model = load_fp32_cpu(ckpt, model, fam, torch)
    config = json.loads(ref_model.config.to_json_string(use_diff=False))
    acts = capture_all(ref_model, config, ids, "cpu")
    rope = rope_info(ref_model)
    head_dim = hf_table.dims(config)["head_dim"]
    default = 1.0 / (config["rope_parameters"]["rope_theta"] ** (
        np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    rope["differs_from_default"] = not np.allclose(
        default[:len(rope["inv_freq"])], rope["inv_freq"], rtol=1e-6) or \
        rope["attention_scaling"] != 1.0
    rt = config["rope_parameters"].get("rope_type", "default")
    if rope["differs_from_default"] != (rt != "default"):
        state = "scaled" if rope["differs_from_default"] else "the default"
        raise hf.HFError(f"{fam['name']}: rope_type {rt}, but inv_freq and "
                         f"attention_scaling after the run are {state}")
    layers = config["num_hidden_layers"]
    checks = hf_refs.meaning_checks(
        {hf_table.parse_key(k, layers): v for k, v in acts.items()}, layers,
        rope, head_dim)
    failed = [c for c in checks if not c[2]]
    engine = hf.engine_version(ref_model, "cpu")
    meta = {"family": fam["name"], "model_type": fam["model_type"],
            "num_hidden_layers": layers, "engine": engine,
            "prompt_name": f"hf-refs-{PROMPT_LEN}"}
    arrays = dict(acts, prompt_ids=np.array(ids, dtype=np.int64))
    hf_refs.write_safetensors(os.path.join(d, "activations.safetensors"),
                              arrays, meta)
    lowp = lowp_errors(ckpt, config, ids, acts, torch) if use_cuda else {
        "note": "no CUDA device: no fp16/bf16 runs"}
    with open(os.path.join(d, "lowp_error.json"), "w") as f:
        json.dump(lowp, f, separators=(",", ":"), sort_keys=True)
    info = dict(meta, note=fam["note"], seed=SEED, noise_1d=NOISE,
                checkpoint={"dtype": fam["dtype"],
                            "rope_spelling": "rope_scaling (pre-5)"
                            if fam["legacy_rope"] else "rope_parameters",
                            "files": {x: os.path.getsize(os.path.join(ckpt, x))
                                      for x in sorted(os.listdir(ckpt))},
                            "shards": len(files)},
                run={"dtype": "float32", "device": "cpu",
                     "attn_implementation": str(getattr(
                         ref_model.config, "_attn_implementation", None))},
                rope=rope, config=config, prompt_ids=ids,
                checks=[{"check": c[0], "max_rel_err": c[1], "ok": c[2]}
                        for c in checks],
                keys={k: {"stage": hf_table.NAME_TO_STAGE[
                    hf_table.parse_key(k, layers)[0]],
                    "shape": list(v.shape)} for k, v in sorted(acts.items())})
    with open(os.path.join(d, "activations.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
    if failed:
        raise hf.HFError(f"{fam['name']}: meaning checks failed: "
                         + "; ".join(f"{c[0]} (err {c[1]:.2e})"
                                     for c in failed[:4]))
    with open(os.path.join(ckpt, "model.safetensors.index.json")) as f:
        names = sorted(json.load(f)["weight_map"])
    return {"checks": f"{len(checks)}/{len(checks)}", "rope": rt,
            "shards": len(files), "tensors": len(names),
            "expert_tensor": next((n for n in names if "experts" in n), None),
            "lowp": lowp.get("by_stage", {})}


def lowp_errors(ckpt, config, ids, ref, torch):
    """HF's own fp32/fp16/bf16 runs on CUDA against the CPU fp32 values."""
    runs, by_stage = {}, {}
    for dtype in ("float32", "float16", "bfloat16"):
        model = hf.load_model(ckpt, dtype, "cuda")
        got = capture_all(model, config, ids, "cuda")
        table = hf_refs.error_table(got, ref)
        name = f"{dtype}/cuda"
        runs[name] = table
        worst = {}
        for k, v in table.items():
            point = k.split(".")[-1]
            e = v.get("max_row_rel_l2", v.get("weights_max_row_rel_l2"))
            worst[point] = max(worst.get(point, 0.0), e)
        by_stage[name] = worst
        del model
        torch.cuda.empty_cache()
    return {"reference": "float32 on cpu (activations.safetensors)",
            "metric": "relative L2 ||run - ref|| / ||ref||, of the whole "
                      "tensor and the largest of a row (one token)",
            "runs": runs, "by_stage": by_stage}


def device(families, out, use_cuda):
    try:
        import torch
        import transformers
    except ImportError as e:
        sys.exit(f"make_refs.py: needs torch and transformers ({e}); "
                 f"--check runs without them")
    major = int(transformers.__version__.split(".")[0])
    if major < 5:
        sys.exit(f"make_refs.py: transformers {transformers.__version__}: "
                 f"the HF stage table is for transformers 5")
    use_cuda = use_cuda and torch.cuda.is_available()
    root = os.path.join(out, "models", "hf-refs")
    os.makedirs(root, exist_ok=True)
    ids = prompt_ids()
    with open(os.path.join(root, "prompt.json"), "w") as f:
        json.dump(ids, f)
    results, failed = {}, []
    for fam in families:
        t0 = time.time()
        try:
            r = run_family(fam, ids, root, torch, transformers, use_cuda)
            r["status"] = "ok"
        except Exception as e:  # one family's failure must not lose the rest
            r = {"status": f"FAILED: {type(e).__name__}: {e}"}
            failed.append(fam["name"])
            print(traceback.format_exc(limit=-4), flush=True)
        r["seconds"] = round(time.time() - t0, 1)
        r["bytes"] = _du(os.path.join(root, fam["name"]))
        results[fam["name"]] = r
        print(f"{fam['name']}: {r['status']} ({r['seconds']} s, "
              f"{r['bytes']} bytes)", flush=True)
    total = _du(root)
    manifest = {"transformers": transformers.__version__,
                "torch": torch.__version__, "seed": SEED,
                "prompt": {"length": PROMPT_LEN, "seed": PROMPT_SEED},
                "cuda": torch.cuda.get_device_name(0) if use_cuda else None,
                "families": {f["name"]: {"model_type": f["model_type"],
                                         "dtype": f["dtype"],
                                         "note": f["note"],
                                         **results[f["name"]]}
                             for f in families},
                "total_bytes": total}
    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    summary(manifest)
    if total > BUDGET:
        print(f"OVER BUDGET: {total} bytes > {BUDGET}")
    return 1 if failed or total > BUDGET else 0


def _du(path):
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, fs in os.walk(path) for f in fs)


def summary(manifest):
    print(f"\nHF references: transformers {manifest['transformers']}, torch "
          f"{manifest['torch']}, {manifest['total_bytes']} bytes")
    print(f"{'family':22s} {'dtype':9s} {'shards':>6s} {'bytes':>7s} "
          f"{'checks':>6s}  {'fp16 logits':>11s} {'bf16 logits':>11s}  "
          f"status")
    for name, r in manifest["families"].items():
        lp = r.get("lowp") or {}

        def err(run):
            e = lp.get(run, {}).get("logits")
            return f"{e:.1e}" if isinstance(e, float) and math.isfinite(e) \
                else "-"
        print(f"{name:22s} {r['dtype']:9s} {r.get('shards', 0):>6} "
              f"{r['bytes']:>7d} {r.get('checks', '-'):>6s}  "
              f"{err('float16/cuda'):>11s} {err('bfloat16/cuda'):>11s}  "
              f"{r['status'][:60]}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="writes OUT/models/hf-refs")
    ap.add_argument("--families", help="comma-separated names (default all)")
    ap.add_argument("--no-cuda", action="store_true",
                    help="skip the fp16/bf16 runs")
    ap.add_argument("--check", action="store_true",
                    help="check the plan without torch")
    ap.add_argument("--list", action="store_true", help="family names")
    a = ap.parse_args(argv)
    families = FAMILIES
    if a.families:
        names = {f["name"]: f for f in FAMILIES}
        unknown = [n for n in a.families.split(",") if n not in names]
        if unknown:
            ap.error(f"unknown families {unknown}; known: {', '.join(names)}")
        families = [names[n] for n in a.families.split(",")]
    if a.list:
        print(" ".join(f["name"] for f in families))
        return 0
    if a.check:
        return check(families)
    if not a.out:
        ap.error("--out is required (unless --check or --list)")
    return device(families, a.out, not a.no_cuda)


if __name__ == "__main__":
    sys.exit(main())
