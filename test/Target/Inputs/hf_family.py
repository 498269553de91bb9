"""Runs one committed HF reference family (models/hf-refs/FAMILY) through
GRETA and compares it with HF transformers' fp32 activations: greta-run on
the checkpoint directory itself (CPU, f32, every stage, every position,
values), the HF activations converted to a GRETA trace with the run's
identity, greta-diff under the tolerance policy with the bounds below, and
the largest relative L2 of a stage (issue #21's bound: 1e-5).

  hf_family.py TOOLS_DIR REFS_DIR FAMILY WORKDIR

Prints "FAMILY: N stages, max rel-L2 X at STAGE LLAYER, greta-diff: no
divergence" (mixture-of-experts families add ", expert ids identical at N
(layer, token) selections": GRETA's chosen experts must be HF's, exactly);
exits 1 when greta-diff finds a divergence or a stage is past
the bound.
"""
import json
import os
import subprocess
import sys

import numpy as np

from greta_trace import read
from greta_trace.hf_refs import rel_l2

tools, refs, family, work = sys.argv[1:5]
MAX_REL_L2 = 1e-5
# HF's random init (std 0.02) makes activations of O(1e-2) and below: an
# absolute bound of f32's default 1e-5 would excuse a whole wrong row, so
# the elements are judged relatively, with an atol far below their scale.
DIFF_BOUNDS = ["--rtol", "1e-3", "--atol", "1e-6", "--mae", "1e-6"]


def run(args, ok=(0,)):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode not in ok:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}):\n"
                 f"{r.stdout}{r.stderr}")
    return r


fdir = os.path.join(refs, family)
greta_trace, hf_trace = (os.path.join(work, n) for n in ("greta", "hf"))
# GRETA records the stages the reference has (references made before a
# stage existed lack it: qwen3-moe's router stages, see docs/MODELS.md).
with open(os.path.join(fdir, "activations.json")) as f:
    hf_stages = sorted({v["stage"] for v in json.load(f)["keys"].values()
                        if v.get("stage")})
run([os.path.join(tools, "greta-run"), os.path.join(fdir, "checkpoint"),
     "--prompt", os.path.join(refs, "prompt.json"), "--trace-dir",
     greta_trace, "--payload", "full", "--positions", "all", "--precision",
     "f32", "--stages", ",".join(hf_stages), "--cache-dir",
     os.path.join(work, "cache")])
run([sys.executable, "-m", "greta_trace.hf_refs",
     os.path.join(fdir, "activations.safetensors"), "--trace-dir", hf_trace,
     "--payload", "full", "--identity-from", greta_trace])
diff = run([os.path.join(tools, "greta-diff"), hf_trace, greta_trace,
            "--policy", "tolerance"] + DIFF_BOUNDS, ok=(0, 1))

ours, theirs = read(greta_trace), read(hf_trace)
keys = sorted({(r.stage, r.layer) for r in theirs.records})
worst = (0.0, "", 0)
selections = 0  # (layer, token) expert selections compared
for stage, layer in keys:
    hp, hv = theirs.values(stage, layer)
    gp, gv = ours.values(stage, layer)
    if not np.array_equal(hp, gp):
        sys.exit(f"{family}: {stage} L{layer}: positions differ")
    whole, row = rel_l2(gv, hv)
    worst = max(worst, (row, stage, layer))
    if stage == "expert_selection":  # [k ids, k weights]: ids exactly
        k = hv.shape[1] // 2
        same = np.all(gv[:, :k] == hv[:, :k], axis=1)
        if not same.all():
            sys.exit(f"{family}: L{layer}: GRETA chose other experts than HF "
                     f"at positions {np.flatnonzero(~same).tolist()}")
        selections += len(same)
verdict = "no divergence" if diff.returncode == 0 else "DIVERGENCE"
moe = (f", expert ids identical at {selections} (layer, token) selections"
       if selections else "")
print(f"{family}: {len(keys)} stages, max rel-L2 {worst[0]:.3g} at "
      f"{worst[1]} L{worst[2]}, greta-diff: {verdict}{moe}")
if diff.returncode != 0:
    print(diff.stdout)
    sys.exit(1)
if worst[0] > MAX_REL_L2:
    sys.exit(f"{family}: {worst[1]} L{worst[2]}: rel-L2 {worst[0]:.3g} "
             f"above {MAX_REL_L2}")
