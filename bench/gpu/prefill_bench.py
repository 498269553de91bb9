#!/usr/bin/env python3
"""Model-level GPU prefill: GRETA (greta-run-aot on an object compiled ahead
of time) against HF transformers (sdpa, fp16 or --hf-dtype) on the same card, same weights,
same prompts, in one call; plus GRETA's tracing overhead.

    prefill_bench.py --runner build/bin/greta-run-aot --so gpu_f16.so \
        --model-dir DIR --lengths 827,1653,4096,16384 [--json out.json]

DIR is what gen_hf_model.py wrote (config.json, model.safetensors or HF
shards with their index, prompt_<N>.json). Per length:
  * HF: LlamaForCausalLM.from_pretrained(DIR, fp16, attn_implementation=
    "sdpa") on cuda, forward(input_ids) under inference_mode (all logits, as
    GRETA computes them), 2 warm-ups, median of 5, CUDA-synchronized wall
    clock.
  * GRETA untraced: one process, --repeat R; the first run is a warm-up
    (cuBLAS init, first allocations), the median of the others is reported.
  * GRETA traced, 3 positions (0, middle, last) x every stage x every layer,
    SHA-256 payload; and every row of every stage (--positions all). The
    warm-up runs compute the trace without writing it; the time of a sample
    is the last run, which also writes every record to the trace file (page
    cache, no fsync), so it is the cost a user sees. --trace-samples K
    processes per configuration, the median is reported (one sample is
    too noisy for a 5 % bound at 5 ms).
  * peak GPU memory of each side: GRETA's as the card's used memory
    (nvidia-smi, sampled every 20 ms) above what was used before its
    untraced process started; HF's as torch.cuda.max_memory_reserved()
    during its runs at that length (weights included on both sides).
  * --profile: where the time goes, at each length: GRETA's kernels per
    kind (GRETA_GPU_OP_PROFILE=1, events around each launch) and HF's CUDA
    kernels from torch.profiler, grouped (GEMM, attention, other).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HF_DTYPE = "float16"


def weights_arg(model_dir):
    one = os.path.join(model_dir, "model.safetensors")
    return one if os.path.exists(one) else model_dir


def card_used_mib():
    p = subprocess.run(["nvidia-smi", "--query-gpu=memory.used",
                        "--format=csv,noheader,nounits", "-i", "0"],
                       capture_output=True, text=True)
    return int(p.stdout.split()[0]) if p.returncode == 0 and p.stdout.strip() else -1


class PeakCardMemory:
    """The card's used memory sampled while a child process runs (MiB)."""

    def __enter__(self):
        self.base, self.peak, self.done = card_used_mib(), 0, False
        self.t = threading.Thread(target=self.poll, daemon=True)
        self.t.start()
        return self

    def poll(self):
        while not self.done:
            self.peak = max(self.peak, card_used_mib())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.done = True
        self.t.join()

    def above_base_gib(self):
        return (self.peak - self.base) / 1024 if self.base >= 0 else float("nan")


def greta(runner, so, model_dir, length, extra, repeat):
    prompt = os.path.join(model_dir, f"prompt_{length}.json")
    cmd = [runner, so, "--weights", weights_arg(model_dir),
           "--prompt", prompt, "--json", "--timing", "--repeat", str(repeat)]
    cmd += extra
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\n{p.stderr}")
    d = json.loads(p.stdout)
    reps = d["timing"].get("forward_repeats_s", [d["timing"]["forward_s"]])
    return reps, d


def greta_profile(runner, so, model_dir, length, extra):
    prompt = os.path.join(model_dir, f"prompt_{length}.json")
    cmd = [runner, so, "--weights", weights_arg(model_dir),
           "--prompt", prompt, "--repeat", "3"] + extra
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env=dict(os.environ, GRETA_GPU_OP_PROFILE="1"))
    lines = [l for l in p.stderr.splitlines() if "op profile" in l]
    return lines[-1] if lines else p.stderr[-2000:]


def hf_class(model_dir):
    """LlamaForCausalLM for a Llama config (as the numbers in
    docs/PERFORMANCE.md were measured), HF's auto class for any other
    (Mixtral: bench/gpu/moe_device.sh)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        llama = json.load(f).get("model_type", "llama") == "llama"
    if llama:
        from transformers import LlamaForCausalLM
        return LlamaForCausalLM
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM


def hf_profile(model_dir, lengths):
    import torch
    from torch.profiler import profile, ProfilerActivity
    model = hf_class(model_dir).from_pretrained(
        model_dir, dtype=getattr(torch, HF_DTYPE),
        attn_implementation="sdpa").cuda().eval()
    for length in lengths:
        with open(os.path.join(model_dir, f"prompt_{length}.json")) as f:
            ids = torch.tensor([json.load(f)], device="cuda")
        with torch.inference_mode():
            for _ in range(2):
                model(input_ids=ids)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                model(input_ids=ids)
                torch.cuda.synchronize()
        groups, kernels = {}, {}
        for e in prof.key_averages():
            t = getattr(e, "device_time_total", None)
            if t is None:
                t = e.cuda_time_total
            if t <= 0:
                continue
            n = e.key.lower()
            g = ("attention" if any(k in n for k in ("flash", "fmha", "attn", "sdpa", "cudnn"))
                 else "gemm" if any(k in n for k in ("gemm", "sm90", "cutlass", "nvjet", "matmul"))
                 else "other")
            groups[g] = groups.get(g, 0) + t / 1e3
            kernels[e.key] = (t / 1e3, e.count)
        tot = sum(groups.values())
        print(f"HF profile {length}: kernels {tot:.3f} ms: " + ", ".join(
            f"{g} {v:.3f} ms ({100 * v / tot:.1f} %)" for g, v in
            sorted(groups.items(), key=lambda x: -x[1])), flush=True)
        for k, (t, c) in sorted(kernels.items(), key=lambda x: -x[1][0])[:12]:
            print(f"   {t:9.3f} ms {c:5d}x  {k[:110]}")
        torch.cuda.empty_cache()
    del model
    torch.cuda.empty_cache()


def hf_times(model_dir, lengths, warmup=2, repeat=5):
    import torch
    model = hf_class(model_dir).from_pretrained(
        model_dir, dtype=getattr(torch, HF_DTYPE),
        attn_implementation="sdpa").cuda().eval()
    out, peak = {}, {}
    for length in lengths:
        with open(os.path.join(model_dir, f"prompt_{length}.json")) as f:
            ids = torch.tensor([json.load(f)], device="cuda")
        torch.cuda.reset_peak_memory_stats()
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeat):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                logits = model(input_ids=ids).logits
                torch.cuda.synchronize()
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
                del logits
        out[length] = times
        peak[length] = torch.cuda.max_memory_reserved() / 2**30
        torch.cuda.empty_cache()
    del model
    torch.cuda.empty_cache()
    return out, peak


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runner", required=True)
    ap.add_argument("--so", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--lengths", default="827,1653,4096,16384")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--kernel", action="append", default=[])
    ap.add_argument("--no-trace", action="store_true")
    ap.add_argument("--no-hf", action="store_true",
                    help="GRETA only (e.g. a kernel variant's row)")
    ap.add_argument("--traces", default="3,all",
                    help="traced configurations: 3 (positions 0, middle, "
                         "last), all (every row), comma-separated")
    ap.add_argument("--trace-samples", type=int, default=3,
                    help="processes per traced configuration (median)")
    ap.add_argument("--profile", action="store_true",
                    help="print GRETA's and HF's kernel time by kind, then exit")
    ap.add_argument("--hf-dtype", default="float16",
                    choices=["float16", "bfloat16"])
    ap.add_argument("--json")
    a = ap.parse_args()
    global HF_DTYPE
    HF_DTYPE = a.hf_dtype
    lengths = [int(x) for x in a.lengths.split(",")]
    kern = [f"--kernel={k}" for k in a.kernel]
    if a.profile:
        for length in lengths:
            print(f"GRETA profile {length}: "
                  f"{greta_profile(a.runner, a.so, a.model_dir, length, kern)}",
                  flush=True)
        if not a.no_hf:
            hf_profile(a.model_dir, lengths)
        return
    rows = []
    tmp = tempfile.mkdtemp(prefix="greta-bench-")
    for length in lengths:
        with PeakCardMemory() as mem:
            reps, d = greta(a.runner, a.so, a.model_dir, length, kern, a.repeat)
        row = {"tokens": length, "untraced_s": statistics.median(reps[1:]),
               "untraced_reps_s": reps, "device": d.get("device", ""),
               "peak_gib": mem.above_base_gib()}
        if not a.no_trace:
            mid = length // 2
            configs = {"3": ("trace3", f"0,{mid},last"),
                       "all": ("trace_all", "all")}
            for name, pos in (configs[t] for t in a.traces.split(",")):
                tdir = os.path.join(tmp, f"{name}_{length}")
                written, dry = [], []
                for _ in range(max(1, a.trace_samples)):
                    reps_t, dt = greta(a.runner, a.so, a.model_dir, length,
                                       kern + ["--positions", pos, "--trace-dir",
                                               tdir, "--overwrite"], a.repeat)
                    written.append(reps_t[-1])
                    dry += reps_t[1:-1] if len(reps_t) > 2 else reps_t[-1:]
                row[f"{name}_s"] = statistics.median(written)
                row[f"{name}_samples_s"] = written
                row[f"{name}_dry_s"] = statistics.median(dry)
                row[f"{name}_records"] = dt["records"]
                row[f"{name}_bytes"] = os.path.getsize(
                    os.path.join(tdir, "records.bin"))
                subprocess.run(["rm", "-rf", tdir])
        rows.append(row)
        print(json.dumps(row), flush=True)
    hf, hf_peak = ({}, {}) if a.no_hf else hf_times(a.model_dir, lengths)
    for row in rows:
        if row["tokens"] in hf:
            row["hf_s"] = statistics.median(hf[row["tokens"]])
            row["hf_reps_s"] = hf[row["tokens"]]
            row["hf_peak_gib"] = hf_peak[row["tokens"]]
    print(f"\ndevice: {rows[0]['device']}")
    print("peak GPU memory (GiB, weights included): " + ", ".join(
        f"{r['tokens']}: GRETA {r['peak_gib']:.1f}"
        + (f", HF {r['hf_peak_gib']:.1f}" if "hf_peak_gib" in r else "")
        for r in rows))
    hd = {"float16": "fp16", "bfloat16": "bf16"}[a.hf_dtype]
    print(f"| tokens | HF sdpa {hd} ms | GRETA ms | HF/GRETA | "
          "traced 3 pos ms | overhead | traced all rows ms | x untraced | "
          "records (all rows) |")
    print("|---|---|---|---|---|---|---|---|---|")
    if a.kernel:
        print(f"GRETA kernels: {', '.join(a.kernel)}")
    for r in rows:
        u, h = r["untraced_s"], r.get("hf_s")
        line = (f"| {r['tokens']} | {h * 1e3:.1f} | {u * 1e3:.1f} | "
                f"{h / u:.2f}x |" if h else
                f"| {r['tokens']} | - | {u * 1e3:.1f} | - |")
        if "trace3_s" in r:
            line += (f" {r['trace3_s'] * 1e3:.1f} | "
                     f"{(r['trace3_s'] / u - 1) * 100:+.1f}% |")
        else:
            line += " - | - |"
        if "trace_all_s" in r:
            line += (f" {r['trace_all_s'] * 1e3:.1f} | "
                     f"{r['trace_all_s'] / u:.2f}x | "
                     f"{r['trace_all_records']} |")
        else:
            line += " - | - | - |"
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
