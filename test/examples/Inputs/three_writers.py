"""The C API, the Python Writer and GRETA's C++ writer, from the same arrays.

  three_writers.py GRETA_TRACE_GEN PROMPT DUMP_DIR C_TRACE OUT_DIR

DUMP_DIR is what `greta-c-engine --dump-arrays` wrote next to its trace
C_TRACE: every tensor's rows and spec.json. The same rows are written by
`greta-trace-gen --arrays` (GRETA's runtime: Session::trace for f32/f64,
fillRowRecord and appendBlock for f16/bf16), unless the GRETA_TRACE_*
filter is set (greta-trace-gen's f16/bf16 blocks are unfiltered), and by
greta_trace.Writer (its filter from the same variables). records.bin must be
the same bytes and manifest.json the same fields and text, but for each
writer's own run id and the records digest over it (both checked against
the trace). Prints a line per writer pair; exits 1 at the first difference,
naming the byte or field.
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
# The C API records the ids and their digest itself: the others get them
# from here.
spec["manifest"]["prompt_digest"] = greta_trace.prompt_digest(ids)
spec["manifest"]["prompt_ids"] = ids
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



def without_run(name):
    """records.bin and manifest.json of a trace, each writer's own run id
    (header bytes 16..31, format 3) and the records digest that covers it
    replaced, after checking that the manifest holds both truly."""
    path = traces[name]
    data = open(os.path.join(path, "records.bin"), "rb").read()
    text = open(os.path.join(path, "manifest.json")).read()
    m = json.loads(text)
    run_id = data[16:32].hex()
    if m.get("run_id") != run_id:
        sys.exit(f"{name}: manifest run_id {m.get('run_id')} is not its "
                 f"header's {run_id}")
    greta_trace.read(path)  # verifies the records digest and count
    text = text.replace(m["run_id"], "RUN").replace(m["records_digest"],
                                                   "DIGEST")
    return data[:16] + data[32:], text, run_id


names = list(traces)
ref = names[0]
a, ma, ida = without_run(ref)
for other in names[1:]:
    b, mb, idb = without_run(other)
    if ida == idb:
        sys.exit(f"{ref} and {other} wrote the same run id {ida}")
    if a != b:
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                  min(len(a), len(b)))
        at += 16 if at >= 16 else 0  # the file's offset
        sys.exit(f"records.bin differs at byte {at} ({ref} {len(a) + 16} "
                 f"bytes, {other} {len(b) + 16})")
    ja, jb = json.loads(ma), json.loads(mb)
    for key in sorted(ja.keys() | jb.keys()):
        if ja.get(key) != jb.get(key):
            sys.exit(f"manifest field '{key}' differs: {ref} "
                     f"{ja.get(key)!r}, {other} {jb.get(key)!r}")
    if ma != mb:
        sys.exit("manifest text differs (fields agree)")
    print(f"{ref} = {other}: records.bin {len(a) + 16} bytes, "
          f"{ja['records']} records, filter '{ja['filter']}': identical")
