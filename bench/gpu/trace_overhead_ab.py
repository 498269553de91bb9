#!/usr/bin/env python3
"""Interleaved A/B of the 3-position trace overhead: builds side by side.

The 3-position overhead at short prompts is a few tenths of a millisecond
on a 5 ms forward, less than the spread between processes. So each round
runs, one process each and in a rotated order, the untraced forward and
every traced configuration; the overhead of a configuration is its median
written-run time over the untraced median, with the quartiles of its
per-round ratios. The runs between the warm-up and the written one build
the same records without appending them: their median ("dry") has less
spread. Every process runs with GRETA_GPU_TRACE_PROFILE=1, whose
line gives the compute stream's GPU time and the final batch's.

  trace_overhead_ab.py --so tinyllama-1.1b-gpu_f16.so --model-dir M \\
      --lengths 827,1653 --rounds 10 \\
      --config new=build-new/bin/greta-run-aot \\
      --config old=build-old/bin/greta-run-aot \\
      --config 'memcpy=build-new/bin/greta-run-aot:GRETA_EXP_X=1'

--config NAME=RUNNER[:VAR=VALUE,...]: the first one's runner also runs
the untraced forward (with --so). A variable SO=PATH gives that
configuration another compiled model (e.g. two greta-compile builds on one
runtime). --positions all traces every row instead of three positions.
Prints a table per length; --json writes every sample.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def parse_config(text):
    name, _, rest = text.partition("=")
    runner, _, env = rest.partition(":")
    if not name or not runner:
        raise SystemExit(f"--config {text!r}: expected NAME=RUNNER[:VAR=VALUE,...]")
    envs = dict(kv.split("=", 1) for kv in env.split(",") if kv)
    so = envs.pop("SO", None)
    return name, runner, envs, so


PROFILE = {
    "compute_gpu_ms": r"compute stream on the GPU ([0-9.]+) ms",
    "final_gpu_ms": r"final batch on the GPU ([0-9.]+) ms",
    "endcall_ms": r"endCall ([0-9.]+) ms",
    "after_compute_ms": r"of which ([0-9.]+) ms after the compute stream's end",
    "hashed_after_landing_ms": r"([0-9.]+) ms after its rows landed",
}


def run(runner, env, so, model_dir, length, traced, tdir, repeat, positions):
    cmd = [runner, so, "--weights", os.path.join(model_dir, "model.safetensors"),
           "--prompt", os.path.join(model_dir, f"prompt_{length}.json"),
           "--json", "--timing", "--repeat", str(repeat)]
    if traced:
        cmd += ["--positions",
                "all" if positions == "all" else f"0,{length // 2},last",
                "--trace-dir", tdir, "--overwrite"]
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env=dict(os.environ, GRETA_GPU_TRACE_PROFILE="1", **env))
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\n{p.stderr[-3000:]}")
    reps = json.loads(p.stdout)["timing"]["forward_repeats_s"]
    prof = [l for l in p.stderr.splitlines()
            if l.startswith("greta trace profile:")]
    # wall: the written run (traced) or the median of the runs after the
    # warm-up (untraced); dry: the median of the runs between the warm-up
    # and the written one, which build the same records without appending
    # them (less spread than one run: better for comparing builds).
    sample = {"wall_ms": 1e3 * (reps[-1] if traced else
                                statistics.median(reps[1:])),
              "dry_ms": 1e3 * statistics.median(reps[1:-1] if traced and
                                                len(reps) > 2 else reps[1:])}
    for key, rx in PROFILE.items():
        m = re.search(rx, prof[-1]) if prof else None
        sample[key] = float(m.group(1)) if m else None
    sample["profile"] = prof[-1] if prof else None
    return sample


def med(samples, key):
    """Median of a profile field (NaN where no profile line was printed:
    the CPU backend has none)."""
    xs = [s[key] for s in samples if s[key] is not None]
    return statistics.median(xs) if xs else float("nan")


def quartiles(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--so", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--lengths", default="827,1653")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--config", action="append", required=True)
    ap.add_argument("--positions", choices=["3", "all"], default="3",
                    help="trace 3 positions (0, the middle, the last) or "
                         "every row")
    ap.add_argument("--json")
    a = ap.parse_args()
    configs = [parse_config(c) for c in a.config]
    names = ["untraced"] + [c[0] for c in configs]
    runs = {"untraced": (configs[0][1], configs[0][2], a.so, False)}
    runs.update({n: (r, e, so or a.so, True) for n, r, e, so in configs})
    tmp = tempfile.mkdtemp(prefix="greta-ab-")
    out = {}
    for length in [int(x) for x in a.lengths.split(",")]:
        samples = {n: [] for n in names}
        for rnd in range(a.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for n in order:
                runner, env, so, traced = runs[n]
                samples[n].append(run(runner, env, so, a.model_dir, length,
                                      traced, os.path.join(tmp, n), a.repeat,
                                      a.positions))
        out[length] = samples
        base = [s["wall_ms"] for s in samples["untraced"]]
        base_gpu = med(samples["untraced"], "compute_gpu_ms")
        print(f"\n{length} tokens, {a.rounds} interleaved rounds, "
              f"{'every row' if a.positions == 'all' else '3 positions'}")
        dry_base = statistics.median(s["dry_ms"] for s in samples["untraced"])
        print("| config | wall ms | overhead (per-round quartiles) | "
              "dry runs: overhead | compute stream GPU over untraced ms | "
              "final batch GPU ms | endCall after the compute stream ms | "
              "last rows hashed after landing ms |")
        print("|---|---|---|---|---|---|---|---|")
        for n in names:
            wall = [s["wall_ms"] for s in samples[n]]
            gpu, fin, end = (med(samples[n], k) for k in
                             ("compute_gpu_ms", "final_gpu_ms", "after_compute_ms"))
            if n == "untraced":
                print(f"| {n} | {statistics.median(wall):.3f} | | "
                      f"{dry_base:.3f} ms | | {fin:.3f} | {end:.3f} | |")
                continue
            ratios = [100 * (w / b - 1) for w, b in zip(wall, base)]
            lo, hi = quartiles(ratios)
            over = 100 * (statistics.median(wall) / statistics.median(base) - 1)
            dry = statistics.median(s["dry_ms"] for s in samples[n])
            print(f"| {n} | {statistics.median(wall):.3f} | **{over:+.1f} %** "
                  f"({lo:+.1f} … {hi:+.1f}) | {100 * (dry / dry_base - 1):+.1f} % | "
                  f"{gpu - base_gpu:+.3f} | {fin:.3f} | {end:.3f} | "
                  f"{med(samples[n], 'hashed_after_landing_ms'):.3f} |")
        sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
