#!/usr/bin/env python3
"""Model-level GPU decode: GRETA (greta-run-aot --generate on an object
compiled ahead of time) against HF transformers generate (sdpa, fp16,
dynamic and static cache) on the same card, same weights, same prompts, in
one call; plus GRETA's tracing overhead while decoding.

    decode_bench.py --runner build/bin/greta-run-aot --so gpu_f16.so \\
        --model-dir DIR --lengths 827,4096,16384 --new 128 [--json out.json]

DIR is what gen_hf_model.py wrote (config.json, weights, prompt_<N>.json).
Decode time of a side = time(prompt + N new tokens) - time(prompt + 1 new
token): the N - 1 decode steps after the prefill, greedy, EOS ignored; its
tokens/s = (N - 1) / that time.
  * HF: LlamaForCausalLM.from_pretrained(DIR, fp16, attn_implementation=
    "sdpa") on cuda, generate(max_new_tokens=N, min_new_tokens=N,
    do_sample=False) under inference_mode, with the default (dynamic) cache
    and with cache_implementation="static"; 1 warm-up, median of --repeat,
    CUDA-synchronized wall clock. The faster cache is the reference.
  * GRETA: one process per configuration, --repeat R (the first run is a
    warm-up), the median of the others; --generate N --ignore-eos against
    --generate 1 (a single-shot prefill).
  * GRETA traced: --generate N with --trace-dir, every stage of every layer,
    SHA-256 payload, at --trace-positions: by default 3 prompt positions
    (0, middle, last) and every decode step's row (each step is one row):
    its decode time against the untraced one.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def weights_arg(model_dir):
    one = os.path.join(model_dir, "model.safetensors")
    return one if os.path.exists(one) else model_dir


def greta(args, length, new, extra=()):
    prompt = os.path.join(args.model_dir, f"prompt_{length}.json")
    cmd = [args.runner, args.so, "--weights", weights_arg(args.model_dir),
           "--prompt", prompt, "--json", "--timing", "--repeat",
           str(args.repeat), "--generate", str(new), "--ignore-eos"]
    cmd += [f"--kernel={k}" for k in args.kernel] + list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\n{p.stderr}")
    d = json.loads(p.stdout)
    reps = d["timing"].get("forward_repeats_s", [d["timing"]["forward_s"]])
    # The first repeat is a warm-up when there are several.
    return statistics.median(reps[1:] if len(reps) > 1 else reps), d


def hf_times(args, lengths, new):
    import torch
    from transformers import LlamaForCausalLM
    model = LlamaForCausalLM.from_pretrained(
        args.model_dir, dtype=torch.float16,
        attn_implementation="sdpa").cuda().eval()
    out = {}
    for length in lengths:
        with open(os.path.join(args.model_dir, f"prompt_{length}.json")) as f:
            ids = torch.tensor([json.load(f)], device="cuda")
        for cache in ("dynamic", "static"):
            kw = {} if cache == "dynamic" else {"cache_implementation": "static"}
            med = {}
            for n in (1, new):
                times = []
                with torch.inference_mode():
                    for i in range(1 + args.repeat):
                        torch.cuda.synchronize()
                        t0 = time.perf_counter()
                        model.generate(ids, max_new_tokens=n, min_new_tokens=n,
                                       do_sample=False, pad_token_id=0, **kw)
                        torch.cuda.synchronize()
                        if i >= 1:
                            times.append(time.perf_counter() - t0)
                med[n] = statistics.median(times)
            out[(length, cache)] = med[new] - med[1]
            torch.cuda.empty_cache()
    del model
    torch.cuda.empty_cache()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runner", required=True)
    ap.add_argument("--so", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--lengths", default="827,4096,16384")
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kernel", action="append", default=[])
    ap.add_argument("--kv-block-size", type=int, default=16)
    ap.add_argument("--trace-positions", default="3+steps",
                    help="3+steps (default), or a --positions value")
    ap.add_argument("--no-trace", action="store_true")
    ap.add_argument("--no-hf", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    new = args.new
    steps = new - 1
    block = ["--kv-block-size", str(args.kv_block_size)]
    rows, report = [], {"new_tokens": new, "lengths": {}}
    for length in lengths:
        prefill, _ = greta(args, length, 1)
        full, d = greta(args, length, new, block)
        dec = full - prefill
        r = {"greta_prefill_s": prefill, "greta_total_s": full,
             "greta_decode_s": dec, "greta_tok_s": steps / dec,
             "generated": d.get("generated", [])[:8]}
        if not args.no_trace:
            pos = args.trace_positions
            if pos == "3+steps":
                pos = f"0,{length // 2},{length - 1},{length}-{length + new - 2}"
            with tempfile.TemporaryDirectory() as t:
                traced, td = greta(args, length, new, block + [
                    "--trace-dir", os.path.join(t, "tr"), "--positions", pos])
            r["traced_decode_s"] = traced - prefill
            r["trace_overhead"] = (traced - prefill) / dec - 1
            r["trace_positions"] = pos
            r["records"] = td.get("records")
        report["lengths"][length] = r
        print(f"greta {length}: {r['greta_tok_s']:.1f} tok/s decode, "
              f"prefill {prefill*1e3:.1f} ms", flush=True)
    if not args.no_hf:
        hf = hf_times(args, lengths, new)
        for length in lengths:
            r = report["lengths"][length]
            for cache in ("dynamic", "static"):
                r[f"hf_{cache}_decode_s"] = hf[(length, cache)]
                r[f"hf_{cache}_tok_s"] = steps / hf[(length, cache)]
            r["hf_best_tok_s"] = max(r["hf_dynamic_tok_s"], r["hf_static_tok_s"])
            r["ratio"] = r["greta_tok_s"] / r["hf_best_tok_s"]
    print(f"\ndecode of {new} tokens (tokens/s over the {steps} steps after "
          f"the prefill), fp16, greedy:")
    hdr = (f"{'prompt':>7} | {'GRETA tok/s':>11} | {'HF dyn':>8} | "
           f"{'HF static':>9} | {'GRETA/HF best':>13} | {'trace 3+steps':>13}")
    print(hdr)
    print("-" * len(hdr))
    for length in lengths:
        r = report["lengths"][length]
        hd = f"{r['hf_dynamic_tok_s']:8.1f}" if "ratio" in r else f"{'-':>8}"
        hs = f"{r['hf_static_tok_s']:9.1f}" if "ratio" in r else f"{'-':>9}"
        ra = f"{r['ratio']:12.2f}x" if "ratio" in r else f"{'-':>13}"
        tr = (f"{100 * r['trace_overhead']:+12.1f}%" if "trace_overhead" in r
              else f"{'-':>13}")
        print(f"{length:>7} | {r['greta_tok_s']:11.1f} | {hd} | {hs} | {ra} | {tr}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    bad = [l for l in lengths if report["lengths"][l].get("ratio", 1) < 1.0]
    if bad:
        print(f"GRETA slower than HF's best at {bad}", file=sys.stderr)


if __name__ == "__main__":
    main()
