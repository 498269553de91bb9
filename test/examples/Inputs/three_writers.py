"""The C API, the Python Writer and GRETA's C++ writer, from the same arrays.

  three_writers.py GRETA_TRACE_GEN PROMPT DUMP_DIR C_TRACE OUT_DIR

DUMP_DIR is what `greta-c-engine --dump-arrays` wrote next to its trace
C_TRACE: every tensor's rows and spec.json. The same rows are written by
`greta-trace-gen --arrays` (GRETA's runtime: Session::trace for f32/f64,
fillRowRecord and appendBlock for f16/bf16), unless the GRETA_TRACE_*
filter is set (greta-trace-gen's f16/bf16 blocks are unfiltered), and by
greta_trace.Writer (its filter from the same variables). records.bin must be
the same bytes and manifest.json the same fields and text. Prints a line per
writer pair; exits 1 at the first difference, naming the byte or field.
"""
import json
import os
import subprocess
import sys

import numpy as np

import greta_trace

GEN, PROMPT, DUMP, C_TRACE, OUT = sys.argv[1:6]
NUMPY = {"f32": "<f4", "f64": "<f8", "f16": "<f2", "bf16": "<u2"}

with open(os.path.join(DUMP, "spec.json")) as f:
    spec = json.load(f)
with open(PROMPT) as f:
    ids = json.load(f)
# The C API computes the prompt digest itself: the others get it from here.
spec["manifest"]["prompt_digest"] = greta_trace.prompt_digest(ids)
filtered = any(spec["filter"].values())
traces = {"C API": C_TRACE}

if not filtered:
    with open(os.path.join(DUMP, "spec-gen.json"), "w") as f:
        json.dump(spec, f)
    traces["C++"] = os.path.join(OUT, "cpp")
    subprocess.run([GEN, traces["C++"], "--arrays",
                    os.path.join(DUMP, "spec-gen.json")], check=True)

traces["Python"] = os.path.join(OUT, "py")
m = spec["manifest"]
with greta_trace.Writer(traces["Python"], overwrite=True, **m) as w:
    for call in spec["calls"]:
        for t in call["tensors"]:
            rows = np.fromfile(os.path.join(DUMP, t["file"]),
                               NUMPY[t["dtype"]]).reshape(-1, t["cols"])
            w.tensor(t["stage"], t["layer"], rows, call["positions"],
                     payload=t["payload"], dtype=t["dtype"])

names = list(traces)
ref = names[0]
a = open(os.path.join(traces[ref], "records.bin"), "rb").read()
ma = open(os.path.join(traces[ref], "manifest.json")).read()
for other in names[1:]:
    b = open(os.path.join(traces[other], "records.bin"), "rb").read()
    if a != b:
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                  min(len(a), len(b)))
        sys.exit(f"records.bin differs at byte {at} ({ref} {len(a)} bytes, "
                 f"{other} {len(b)})")
    mb = open(os.path.join(traces[other], "manifest.json")).read()
    ja, jb = json.loads(ma), json.loads(mb)
    for key in sorted(ja.keys() | jb.keys()):
        if ja.get(key) != jb.get(key):
            sys.exit(f"manifest field '{key}' differs: {ref} "
                     f"{ja.get(key)!r}, {other} {jb.get(key)!r}")
    if ma != mb:
        sys.exit("manifest text differs (fields agree)")
    print(f"{ref} = {other}: records.bin {len(a)} bytes, "
          f"{ja['records']} records, filter '{ja['filter']}': identical")
