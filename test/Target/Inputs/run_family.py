"""Runs one family end to end on the CPU and checks it against the numpy
reference (families_ref.py): random weights in the given dtype, the IR
imported from config.json, a 48-token prompt, GRETA f64 (bound 1e-9) and f32
(bound 1e-5, issue #21's) with every stage traced at every position.

  run_family.py TOOLS_DIR CONFIG DTYPE WORKDIR
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

tools, config, dtype, work = sys.argv[1:5]
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(work, exist_ok=True)


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def tool(name):
    return os.path.join(tools, name)


def perturb_1d(path):
    """HF (and greta-translate) initialise norms to ones (Gemma: zeros) and
    biases to zeros, under which a dropped bias or a wrong norm formula goes
    unseen: every 1-D tensor gets seeded noise (std 0.1), in its dtype."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    rng = np.random.default_rng(11)
    for name in sorted(header):
        e = header[name]
        if name == "__metadata__" or len(e["shape"]) != 1:
            continue
        b, end = (8 + n + o for o in e["data_offsets"])
        count = e["shape"][0]
        noise = rng.normal(0, 0.1, count)
        if e["dtype"] == "F32":
            v = np.frombuffer(data[b:end], "<f4") + noise
            data[b:end] = v.astype("<f4").tobytes()
        elif e["dtype"] == "F16":
            v = np.frombuffer(data[b:end], "<f2").astype(np.float64) + noise
            data[b:end] = v.astype("<f2").tobytes()
        else:  # BF16: round to nearest even on the upper 16 bits of f32
            u = np.frombuffer(data[b:end], "<u2").astype(np.uint32) << 16
            v = u.view("<f4").astype(np.float64) + noise
            bits = v.astype("<f4").view("<u4").astype(np.uint64)
            bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
            data[b:end] = bits.astype("<u2").tobytes()
    with open(path, "wb") as f:
        f.write(data)


weights = os.path.join(work, "w.safetensors")
model = os.path.join(work, "model.mlir")
prompt = os.path.join(work, "prompt.json")
run(tool("greta-translate"), "--gen-random-weights", config, "--seed", "3",
    "--dtype", dtype, "-o", weights)
perturb_1d(weights)
run(tool("greta-translate"), "--import-hf-config", config, "-o", model)
run(tool("greta-translate"), "--gen-prompt", "--length", "48", "--vocab",
    "256", "--seed", "7", "-o", prompt)
for precision, tol in (("f64", "1e-9"), ("f32", "1e-5")):
    trace = os.path.join(work, "trace-" + precision)
    run(tool("greta-run"), model, "--weights", weights, "--prompt", prompt,
        "--trace-dir", trace, "--payload", "full", "--positions", "all",
        "--precision", precision)
    out = run(sys.executable, os.path.join(here, "families_ref.py"), config,
              weights, prompt, trace, "--tol", tol)
    print(f"{precision}: " + out.strip().replace("\n", ", "))
