"""greta_trace.Filter against the runtime's Filter (runtime/lib/Filter.cpp,
through greta-trace-gen --arrays): the same specs give the same text form
(the manifest's `filter`) and the same error messages.

  filter_agree.py GRETA_TRACE_GEN WORK_DIR
"""
import json
import os
import subprocess
import sys

import greta_trace

GEN, WORK = sys.argv[1], sys.argv[2]
SPECS = [
    {"layers": "0,1,4-8"}, {"layers": "3, 1 ,2"}, {"layers": "all"},
    {"layers": "0,all"}, {"layers": "2-2"}, {"stages": "mlp_out,embed_out"},
    {"stages": "logits, all"}, {"stages": "all,k_cache"},
    {"stages": "v_cache_read"}, {"positions": "826,700-826,last"},
    {"positions": "last"}, {"positions": "5,all,last"}, {"positions": "7,3"},
    {"payload": "full"}, {"payload": "stats"},
    {"layers": "0-1", "stages": "attn_out", "positions": "1-3,last",
     "payload": "hash"},
    # Errors.
    {"layers": "x"}, {"layers": "1-"}, {"layers": "-1"}, {"layers": "3-1"},
    {"layers": "1,,2"}, {"layers": "0-200000"}, {"layers": "+1"},
    {"layers": "99999999999999999999"}, {"stages": "mlp"},
    {"stages": "mlp_out,"}, {"positions": "last,1-2-3"},
    {"positions": ""},  # "" is not given, as in greta-run
    {"payload": "values"},
]
agree = 0
for i, spec in enumerate(SPECS):
    path = os.path.join(WORK, f"spec{i}.json")
    with open(path, "w") as f:
        json.dump({"filter": spec, "calls": []}, f)
    run = subprocess.run([GEN, os.path.join(WORK, f"t{i}"), "--arrays", path],
                         capture_output=True, text=True)
    if run.returncode == 0:
        with open(os.path.join(WORK, f"t{i}", "manifest.json")) as f:
            cpp = json.load(f)["filter"]
    else:
        cpp = run.stderr.strip().removeprefix("greta-trace-gen: error: ")
    try:
        py = str(greta_trace.Filter(**spec))
    except greta_trace.FilterError as e:
        # greta-trace-gen names the key; the runtime's message follows.
        py = f"filter {list(spec)[0]}: {e}"
    if cpp != py:
        sys.exit(f"{spec}:\n  C++:    {cpp}\n  Python: {py}")
    print(f"{spec} -> {py}")
    agree += 1
print(f"{agree} specs agree")
try:
    greta_trace.Filter.from_env({"GRETA_TRACE_STAGES": "attn_out,bogus"})
except greta_trace.FilterError as e:
    print(e)
