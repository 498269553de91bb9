#!/usr/bin/python3
"""Clean-pair noise against planted faults: where each greta-diff policy
stops seeing a fault, and whether it ever names a wrong stage.

    bench/diff/policy_sweep.py [--build build] [--work /tmp/greta-sweep]
                               [--clear] [--quick] [--json out.json]

On the CPU, llama-tiny with random weights (seed 0) and a 48-token prompt
(test/tools/greta-bisect/Inputs/edit-prompt.json), every stage of every
layer traced with values:

1. clean pairs against the f32 run: f32 --chunk=7, f16 and bf16 emulated,
   f64 (the reference). For each, the worst row of: relative RMSE
   (RMSE / RMS(BASE)), MAE / RMS(BASE) and max-abs / RMS(BASE), and whether
   the tolerance and reference policies call it a divergence (they must
   not);
2. planted faults (greta-inject-fault, kind scale, magnitude 1 + m for
   m = 1e-2 ... 1e-5) at one stage of each of the 6 categories, at an early
   and a late layer, from position 0 and from position 30. Each policy's
   FIRST_FAIL is scored: right (the planted stage, layer and position),
   miss (no divergence) or WRONG (anything else).

Every run is made by this sweep, with this build: a WORK that is not empty
is refused (its runs may come from another build or from a sweep that was
killed), or deleted first with --clear; a WORK another sweep is using
(WORK.lock held) is refused.

Prints both tables in the Markdown of docs/DIFF.md ("Detection floors").
Exit 1 when a clean pair diverges under tolerance or reference, when exact
misses a fault, or when any policy names a wrong stage; 2 on an error.
"""
import argparse
import fcntl
import json
import math
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
import greta_trace  # noqa: E402

STAGES = ["residual_pre_attn", "q_pre_rope", "attn_out", "residual_post_attn",
          "ffn_norm_in", "mlp_out"]  # one per root-cause category
MAGNITUDES = [1e-2, 1e-3, 1e-4, 1e-5]


def die(message):
    """Exit 2, an error (1 is a policy's wrong verdict)."""
    print("policy_sweep: " + message, file=sys.stderr)
    sys.exit(2)


def sh(argv, ok=(0,)):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode not in ok:
        die("failed (%d): %s\n%s" % (r.returncode, " ".join(argv),
                                     r.stderr[-2000:]))
    return r


class Runner:
    def __init__(self, build, work):
        self.bin = os.path.join(build, "bin")
        self.work = work
        self.model = os.path.join(ROOT, "models/llama-tiny/model.mlir")
        self.prompt = os.path.join(
            ROOT, "test/tools/greta-bisect/Inputs/edit-prompt.json")
        self.weights = os.path.join(work, "w.safetensors")
        self.runs = {}  # name -> trace dir, each made once by this sweep
        sh([self.tool("greta-translate"), "--gen-random-weights",
            os.path.join(ROOT, "models/llama-tiny/config.json"),
            "--seed", "0", "-o", self.weights])

    def tool(self, name):
        return os.path.join(self.bin, name)

    def run(self, name, *flags):
        if name in self.runs:
            return self.runs[name]
        d = os.path.join(self.work, name)
        sh([self.tool("greta-run"), self.model, "--weights", self.weights,
            "--prompt", self.prompt, "--trace-dir", d, "--payload", "full",
            "--cache-dir", os.path.join(self.work, "cache")] + list(flags))
        self.runs[name] = d
        return d

    def first_fail(self, base, test, policy, ref=None):
        argv = [self.tool("greta-diff"), base, test, "--format", "json",
                "--policy", policy]
        if ref:
            argv += ["--ref", ref]
        j = json.loads(sh(argv, ok=(0, 1)).stdout)
        ff = j["first_fail"]
        return None if ff is None else (ff["stage"], ff["layer"],
                                        ff["position"])


def noise(base, test):
    """Worst row of rel-RMSE, MAE/RMS and max-abs/RMS, all over RMS(BASE)."""
    b, t = greta_trace.read(base), greta_trace.read(test)
    tv = {(r.stage, r.layer, r.position): r for r in t.records}
    worst = [0.0, 0.0, 0.0]
    for r in b.records:
        o = tv.get((r.stage, r.layer, r.position))
        if o is None:
            continue
        x, y = r.values.astype("float64"), o.values.astype("float64")
        rms = math.sqrt(float((x * x).mean()))
        if rms == 0:
            continue
        d = abs(y - x)
        vals = [math.sqrt(float((d * d).mean())) / rms, float(d.mean()) / rms,
                float(d.max()) / rms]
        worst = [max(a, v) for a, v in zip(worst, vals)]
    return worst


def claim_work(work, clear):
    """Locks WORK.lock for this sweep and returns WORK empty; refuses a WORK
    in use or holding runs this sweep did not make (reusing them once scored
    a stale run as a missed fault)."""
    work = os.path.abspath(work)
    os.makedirs(os.path.dirname(work), exist_ok=True)
    lock = open(work + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        die("%s is in use by another sweep (%s.lock is held)" % (work, work))
    if os.path.isdir(work) and os.listdir(work):
        if not clear:
            die("%s is not empty (%d entries from an earlier sweep, maybe "
                "of another build): pass --clear to delete them, or another "
                "--work" % (work, len(os.listdir(work))))
        shutil.rmtree(work)
    os.makedirs(work, exist_ok=True)
    return lock


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default="/tmp/greta-sweep")
    ap.add_argument("--clear", action="store_true",
                    help="delete what WORK holds first (else refused)")
    ap.add_argument("--quick", action="store_true",
                    help="2 stages, 1 layer, 1 position (a smoke run)")
    ap.add_argument("--json", help="write every result here")
    ap.add_argument("--layers", default="1,9", help="faulted layers")
    ap.add_argument("--positions", default="0,30",
                    help="first faulted positions (early, late)")
    args = ap.parse_args()
    lock = claim_work(args.work, args.clear)  # noqa: F841 (held to exit)
    R = Runner(args.build, os.path.abspath(args.work))
    bad = []
    base = R.run("f32")
    ref = R.run("f64", "--precision=f64")

    print("## Clean pairs (BASE: CPU f32)\n")
    print("| TEST | worst rel-RMSE | worst MAE/RMS | worst max-abs/RMS "
          "| tolerance | reference |")
    print("|---|---|---|---|---|---|")
    clean = {}
    for name, flags in [("f32 --chunk=7", ["--chunk=7"]),
                        ("f16 emulated", ["--precision=f16"]),
                        ("bf16 emulated", ["--precision=bf16"]),
                        ("f64", ["--precision=f64"])]:
        test = R.run(name.replace(" ", "_").replace("-", ""), *flags)
        w = noise(base, test)
        tol = R.first_fail(base, test, "tolerance")
        rf = R.first_fail(base, test, "reference", ref)
        clean[name] = {"noise": w, "tolerance": tol, "reference": rf}
        if tol or rf:
            bad.append("clean %s diverges: tolerance %s, reference %s"
                       % (name, tol, rf))
        print("| %s | %.2g | %.2g | %.2g | %s | %s |"
              % (name, w[0], w[1], w[2], tol or "no divergence",
                 rf or "no divergence"))

    stages = STAGES[:2] if args.quick else STAGES
    layers = [3] if args.quick else [int(x) for x in args.layers.split(",")]
    positions = [30] if args.quick else [int(x) for x in
                                         args.positions.split(",")]
    policies = ["exact", "tolerance", "reference"]
    score = {(p, m): {"right": 0, "miss": 0, "wrong": 0}
             for p in policies for m in MAGNITUDES}
    cases = []
    for m in MAGNITUDES:
        for s in stages:
            for l in layers:
                for pos in positions:
                    name = "fault_%s_L%d_p%d_%g" % (s, l, pos, m)
                    pipe = ("greta-inject-fault{stage=%s layer=%d "
                            "from-position=%d kind=scale magnitude=%.17g}"
                            % (s, l, pos, 1 + m))
                    test = R.run(name, "--pass-pipeline=" + pipe)
                    want = (s, l, pos)
                    case = {"stage": s, "layer": l, "position": pos,
                            "magnitude": m}
                    for p in policies:
                        got = R.first_fail(base, test, p,
                                           ref if p == "reference" else None)
                        verdict = ("right" if got == want else
                                   "miss" if got is None else "wrong")
                        score[(p, m)][verdict] += 1
                        case[p] = {"first_fail": got, "verdict": verdict}
                        if verdict == "wrong" or (p == "exact" and
                                                  verdict != "right"):
                            bad.append("%s: %s planted %s, got %s"
                                       % (p, name, want, got))
                    cases.append(case)
    n = len(stages) * len(layers) * len(positions)
    print("\n## Planted faults (%d per size: %d stages x %d layers x %d "
          "positions), right / miss / WRONG\n"
          % (n, len(stages), len(layers), len(positions)))
    print("| fault (relative) | " + " | ".join(policies) + " |")
    print("|---|" + "---|" * len(policies))
    for m in MAGNITUDES:
        cells = ["%d / %d / %d" % (score[(p, m)]["right"],
                                   score[(p, m)]["miss"],
                                   score[(p, m)]["wrong"]) for p in policies]
        print("| %g | %s |" % (m, " | ".join(cells)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"clean": clean, "faults": cases}, f, indent=1)
    for b in bad:
        print("policy_sweep: " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
