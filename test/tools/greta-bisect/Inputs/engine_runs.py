"""Checks a greta-bisect --format json report of an outside engine's
bisection (test/tools/greta-bisect/engine-cmd.test): FIRST_FAIL, and the
engine's runs per configuration counted from the work dir's logs (one
CONFIG.log per run), against the bound ceil(log2 L) + 4.

    engine_runs.py REPORT.json WORK_DIR NUM_LAYERS
"""
import glob
import json
import math
import os
import sys

report, work, layers = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(report) as f:
    prompt = json.load(f)["prompts"][0]
ff = prompt["first_fail"]
if ff:
    print(f"FIRST_FAIL {ff['stage']} layer {ff['layer']} position "
          f"{ff['position']}")
else:
    print("no divergence")
bound = math.ceil(math.log2(layers)) + 4
for config in ("base", "test"):
    runs = len(glob.glob(os.path.join(work, "*", "*", config + ".log")))
    print(f"{config}: {runs} engine runs, bound {bound}: "
          f"{'ok' if 0 < runs <= bound else 'OVER'}")
