"""Checks the committed HF references (models/hf-refs, made on the device by
scripts/hf_refs/device.sh): every family's checkpoint files are there with
the sizes its activations.json records, the internal checks recorded at
generation all held, and its activations convert to a GRETA trace. Prints
one line per family.

  hf_refs_committed.py REFS_DIR OUTDIR
"""
import json
import os
import subprocess
import sys

refs, out = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(refs, "manifest.json")))
print("transformers", manifest["transformers"], "families", len(manifest["families"]))
for family in sorted(manifest["families"]):
    fdir = os.path.join(refs, family)
    acts = json.load(open(os.path.join(fdir, "activations.json")))
    for name, size in acts["checkpoint"]["files"].items():
        path = os.path.join(fdir, "checkpoint", name)
        if os.path.getsize(path) != size:
            sys.exit(f"{path}: {os.path.getsize(path)} bytes, activations.json says {size}")
    failed = [c["check"] for c in acts["checks"] if not c["ok"]]
    if failed:
        sys.exit(f"{family}: checks failed at generation: {failed}")
    run = subprocess.run(
        [sys.executable, "-m", "greta_trace.hf_refs",
         os.path.join(fdir, "activations.safetensors"),
         "--trace-dir", os.path.join(out, family)],
        capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"{family}: conversion failed: {run.stderr}")
    print(f"{family}: {acts['checkpoint']['dtype']}, {acts['checkpoint']['shards']} shards, "
          f"{len(acts['checks'])} checks ok, {run.stdout.splitlines()[0].split(': ')[1]}")
