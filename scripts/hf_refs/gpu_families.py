"""GRETA's GPU runs of the HF reference families against HF's own low
precision runs (issue #21: "GPU f16 and bf16 per stage within 1.5x of HF's
own fp16/bf16 error against HF fp32, on the same weights").

For each family and precision: greta-run-aot on the family's checkpoint
(models/hf-refs/FAMILY/checkpoint, the weights HF ran) with the object
compiled for the GPU (greta-compile CKPT --backend gpu --precision P), every
stage at every position; then per stage and layer the largest relative L2
of a row (one token) against HF's fp32 activations, HF's own fp16/bf16
error of the same point (lowp_error.json, committed, or measured again with
--hf-rerun), and their ratio. A point where both are exact counts as ratio
1; where only HF is exact, as infinite.

  gpu_families.py --tools DIR --refs models/hf-refs --work DIR
      [--objects DIR | --compile] [--families a,b] [--precisions f16,bf16]
      [--max-ratio 1.5] [--hf-rerun] [--table]

--objects DIR: the objects made beforehand ($DIR/FAMILY-gpu_P.so, e.g. by
scripts/hf_refs/gpu_objects.sh on a machine with LLVM); --compile: make
them with the tools' greta-compile. Prints one line per family and
precision ("FAMILY P: N points, worst ratio R at STAGE LL (GRETA e, HF e):
ok|OVER; whole tensor: worst ratio R2 at ..."), with --table every point.
Mixture-of-experts families (MOE): an expert_selection point compares the
tokens routed elsewhere than HF fp32 (at most HF's own count) and the
weights of the others (selection_point).
The gate is the row ratio (the largest relative L2 of one token's row);
the whole-tensor ratio (every token of the stage at once) is printed beside
it because the largest row is often the one with the smallest norm. Exit 0 when every ratio is within
--max-ratio, 1 otherwise, 2 on an error.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, PYTHON_DIR)
from greta_trace import read  # noqa: E402
from greta_trace.hf_refs import read_safetensors, rel_l2  # noqa: E402

DENSE = ["llama", "llama-rope-linear", "llama-rope-dynamic",
         "llama-rope-llama3", "llama-rope-yarn", "llama-rope-longrope",
         "mistral", "qwen2", "qwen3", "gemma", "phi3"]
MOE = ["mixtral", "qwen2-moe", "qwen3-moe"]
HF_DTYPE = {"f16": "float16/cuda", "bf16": "bfloat16/cuda"}


def run(args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [PYTHON_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}"
              f"{r.stderr}", file=sys.stderr)
        sys.exit(2)
    return r


def hf_errors(refs, family, rerun):
    """{"float16/cuda": {key: {"max_row_rel_l2": e, ...}}, ...}: HF's own
    error of each point against its fp32 CPU values."""
    fdir = os.path.join(refs, family)
    if not rerun:
        with open(os.path.join(fdir, "lowp_error.json")) as f:
            return json.load(f)["runs"]
    sys.path.insert(0, HERE)
    import make_refs  # noqa: E402 (torch and transformers: device only)
    import torch
    with open(os.path.join(fdir, "activations.json")) as f:
        meta = json.load(f)
    arrays, _ = read_safetensors(os.path.join(fdir, "activations.safetensors"))
    ids = [int(i) for i in arrays.pop("prompt_ids").reshape(-1)]
    return make_refs.lowp_errors(os.path.join(fdir, "checkpoint"),
                                 meta["config"], ids, arrays, torch)["runs"]


def point_key(stage, layer, keys):
    k = f"L{layer}.{stage}"
    return k if k in keys else stage


def ratio(greta, hf):
    if hf > 0:
        return greta / hf
    return 1.0 if greta == 0 else math.inf


def compare(a, family, precision, hf_runs):
    """[(ratio, stage, layer, greta err, hf err, tensor ratio, greta tensor
    err, hf tensor err)] of every point: the largest relative L2 of a row
    (one token), then that of the whole stage tensor (every token)."""
    fdir = os.path.join(a.refs, family)
    work = os.path.join(a.work, f"{family}-{precision}")
    so = os.path.join(a.objects or work, f"{family}-gpu_{precision}.so")
    shutil.rmtree(os.path.join(work, "greta"), ignore_errors=True)
    shutil.rmtree(os.path.join(work, "hf"), ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    if a.compile:
        run([os.path.join(a.tools, "greta-compile"),
             os.path.join(fdir, "checkpoint"), "--backend", "gpu",
             "--precision", precision, "-o", so])
    greta_trace, hf_trace = (os.path.join(work, n) for n in ("greta", "hf"))
    run([os.path.join(a.tools, "greta-run-aot"), so, "--weights",
         os.path.join(fdir, "checkpoint"), "--prompt",
         os.path.join(a.refs, "prompt.json"), "--trace-dir", greta_trace,
         "--payload", "full", "--positions", "all"] +
        [f"--kernel={k}" for k in a.kernel])
    run([sys.executable, "-m", "greta_trace.hf_refs",
         os.path.join(fdir, "activations.safetensors"), "--trace-dir",
         hf_trace, "--payload", "full", "--identity-from", greta_trace])
    ours, theirs = read(greta_trace), read(hf_trace)
    own = hf_runs[HF_DTYPE[precision]]
    rows = []
    for stage, layer in sorted({(r.stage, r.layer) for r in theirs.records}):
        hp, hv = theirs.values(stage, layer)
        gp, gv = ours.values(stage, layer)
        if len(hp) != len(gp) or any(x != y for x, y in zip(hp, gp)):
            print(f"{family} {precision}: {stage} L{layer}: positions differ",
                  file=sys.stderr)
            sys.exit(2)
        key = point_key(stage, layer, own)
        if key not in own:
            continue  # a point HF's low precision runs did not record
        if stage == "expert_selection":
            rows.append(selection_point(gv, hv, own[key], layer))
            continue
        gt, g = rel_l2(gv, hv)
        h = own[key].get("max_row_rel_l2", 0.0)
        ht = own[key].get("rel_l2", 0.0)
        rows.append((ratio(g, h), stage, layer, g, h, ratio(gt, ht), gt, ht))
    return rows


def selection_point(gv, hv, hf, layer):
    """An expert_selection point ([k ids, k weights] rows): the tokens
    routed to other experts than HF fp32's, against HF's own count
    (tokens_with_other_experts), and the weights' error on the tokens with
    the same experts against HF's (weights_*rel_l2). More tokens on other
    experts than HF's own low precision run has is an infinite ratio."""
    gv, hv = np.asarray(gv, np.float64), np.asarray(hv, np.float64)
    k = hv.shape[1] // 2
    same = np.all(gv[:, :k] == hv[:, :k], axis=1)
    flips, hf_flips = int(np.sum(~same)), hf.get("tokens_with_other_experts", 0)
    gt, g = rel_l2(gv[same, k:], hv[same, k:]) if same.any() else (0.0, 0.0)
    h, ht = hf.get("weights_max_row_rel_l2", 0.0), hf.get("weights_rel_l2", 0.0)
    r, rt = ratio(g, h), ratio(gt, ht)
    if flips > hf_flips:
        r = rt = math.inf
    label = f"expert_selection ({flips} vs HF {hf_flips} tokens rerouted)"
    return (r, label, layer, g, h, rt, gt, ht)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tools", required=True)
    p.add_argument("--refs", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--objects")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--families", default=",".join(DENSE + MOE))
    p.add_argument("--precisions", default="f16,bf16")
    p.add_argument("--max-ratio", type=float, default=1.5)
    p.add_argument("--hf-rerun", action="store_true")
    p.add_argument("--table", action="store_true")
    p.add_argument("--kernel", action="append", default=[],
                   help="a GPU kernel variant op=name for greta-run-aot")
    a = p.parse_args(argv)
    if bool(a.objects) == a.compile:
        p.error("give exactly one of --objects DIR and --compile")
    over = []
    for family in a.families.split(","):
        hf_runs = hf_errors(a.refs, family, a.hf_rerun)
        for precision in a.precisions.split(","):
            rows = compare(a, family, precision, hf_runs)
            if not rows:
                print(f"{family} {precision}: no point to compare",
                      file=sys.stderr)
                sys.exit(2)
            worst = max(rows)
            tensor = max(rows, key=lambda x: x[5])
            ok = worst[0] <= a.max_ratio
            print(f"{family} {precision}: {len(rows)} points, worst ratio "
                  f"{worst[0]:.3g} at {worst[1]} L{worst[2]} (GRETA "
                  f"{worst[3]:.3g}, HF {worst[4]:.3g}): "
                  f"{'ok' if ok else 'OVER'}; whole tensor: worst ratio "
                  f"{tensor[5]:.3g} at {tensor[1]} L{tensor[2]}", flush=True)
            if a.table:
                print(f"  {'stage':22s} {'layer':>5s} {'GRETA row':>10s} "
                      f"{'HF row':>10s} {'ratio':>7s} {'GRETA all':>10s} "
                      f"{'HF all':>10s} {'ratio':>7s}")
                for r, stage, layer, g, h, rt, gt, ht in sorted(
                        rows, key=lambda x: (x[2], x[1])):
                    print(f"  {stage:22s} {layer:5d} {g:10.3g} {h:10.3g} "
                          f"{r:7.3g} {gt:10.3g} {ht:10.3g} {rt:7.3g}")
            if not ok:
                over.append(f"{family} {precision}")
    if over:
        print(f"over {a.max_ratio}x: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
