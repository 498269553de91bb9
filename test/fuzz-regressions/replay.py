#!/usr/bin/env python3
"""Feeds every fuzz reproducer through the normal tool that reads it.

  replay.py SRC_DIR WORK_DIR WEIGHTS TARGET...

TARGET is a directory of inputs (safetensors, prompt, trace, hf-config) plus,
generated here so that nothing large is committed, deeply nested JSON of
each kind. Each input goes through the tool a user would run:
  safetensors  greta-run MODEL --weights FILE --prompt p0_short
  prompt       greta-run MODEL --weights WEIGHTS --prompt FILE
  trace        greta-diff DIR DIR (DIR split from the input as the fuzzer does)
  hf-config    greta-translate --import-hf-config FILE
Prints `<target>/<input>: exit N` (and the first `error:` line); exits 1 if
any tool was killed by a signal or exited outside 0..2 (a crash), or if a
failure said nothing.
"""
import os
import subprocess
import sys

src, work, weights = sys.argv[1:4]
targets = sys.argv[4:]
here = os.path.dirname(os.path.abspath(__file__))
model = os.path.join(src, "models", "llama-tiny", "model.mlir")
short = os.path.join(src, "models", "prompts", "p0_short.json")
cache = os.path.join(work, "cache")
sys.path.insert(0, here)
import split_trace_input  # noqa: E402


def generated(target):
    """Deeply nested inputs (stack-depth bugs), written to WORK_DIR."""
    d = os.path.join(work, "gen-" + target)
    os.makedirs(d, exist_ok=True)
    deep = 100000
    out = {}
    if target == "prompt":
        out["deep-nesting"] = b"[" + b"[" * deep + b"]" * deep + b"]"
    elif target == "safetensors":
        h = b'{"a":{"dtype":"F32","shape":[' + b"[" * deep + b"]" * deep + \
            b'],"data_offsets":[0,0]}}'
        out["deep-shape-entry"] = len(h).to_bytes(8, "little") + h
    elif target == "hf-config":
        out["deep-nesting"] = b'{"model_type":"llama","x":' + b"[" * deep + \
            b"]" * deep + b"}"
    elif target == "trace":
        m = b'{"format_version":1,"x":' + b"[" * deep + b"]" * deep + b"}"
        out["deep-manifest"] = bytes([0]) + b"\xff\xff" + m  # n clamps
    paths = []
    for name, data in out.items():
        p = os.path.join(d, name)
        open(p, "wb").write(data)
        paths.append(p)
    return paths


def command(target, path):
    if target == "safetensors":
        return ["greta-run", model, "--weights", path, "--prompt", short,
                "--cache-dir", cache]
    if target == "prompt":
        return ["greta-run", model, "--weights", weights, "--prompt", path,
                "--cache-dir", cache]
    if target == "hf-config":
        return ["greta-translate", "--import-hf-config", path, "-o", os.devnull]
    if target == "trace":
        d = os.path.join(work, "trace-" + os.path.basename(path))
        split_trace_input.split(path, d)
        # Old-format seeds have no run id: read them all the same.
        return ["greta-diff", "--allow-unidentified", d, d]
    raise SystemExit(f"unknown target {target}")


bad = 0
for target in targets:
    tdir = os.path.join(here, target)
    kind = target.split("-known-bugs")[0]
    inputs = sorted(os.path.join(tdir, f) for f in os.listdir(tdir))
    if not target.endswith("known-bugs"):
        inputs += generated(kind)
    for path in inputs:
        p = subprocess.run(command(kind, path), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        text = p.stdout.decode("utf-8", "replace")
        err = next((l for l in text.splitlines() if "error:" in l), "")
        name = f"{target}/{os.path.basename(path)}"
        if p.returncode < 0 or p.returncode > 2:
            print(f"{name}: CRASH (exit {p.returncode})")
            print(text[-3000:])
            bad += 1
        elif p.returncode != 0 and not err:
            print(f"{name}: exit {p.returncode} WITHOUT AN ERROR MESSAGE")
            print(text[-3000:])
            bad += 1
        else:
            print(f"{name}: exit {p.returncode} {err}")
sys.exit(1 if bad else 0)
