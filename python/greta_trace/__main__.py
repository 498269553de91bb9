"""python3 -m greta_trace DIR [--records N | --json | --verify]: a summary
of a GRETA trace, every record as JSON lines, or a check of the recorded
digests against the recorded values."""
import argparse
import hashlib
import json
import sys

import numpy as np

from .format import STAGES
from .reader import Record, TraceError, read, stored_bytes


def verify(t):
    checked = bad = 0
    for r in t.records:
        if r.values is None:
            continue
        checked += 1
        digest = hashlib.sha256(stored_bytes(r)).hexdigest()
        nz = int(np.count_nonzero(r.values))
        if digest != r.sha256 or nz != r.nz_count:
            bad += 1
            if bad <= 5:
                print(f"MISMATCH {r.stage}[L{r.layer}, p{r.position}]: "
                      f"sha256 {r.sha256[:16]}.. recorded, {digest[:16]}.. "
                      f"of the values; nz {r.nz_count} recorded, {nz} counted")
    print(f"verified {checked} records with values: {bad} mismatches")
    return 1 if bad else 0


def print_json(t):
    print(json.dumps({"complete": t.complete, "stop_reason": t.stop_reason,
                      "valid_bytes": t.valid_bytes, "manifest": t.manifest}))
    for r in t.records:
        d = {k: getattr(r, k) for k in Record.FIELDS}
        d["shape"] = list(r.shape)
        d["values"] = None if r.values is None else r.values.tolist()
        print(json.dumps(d))


def print_summary(path, t, count):
    m = t.manifest
    print(f"trace {path}: format v{m['format_version']}, "
          f"{'complete' if t.complete else 'INCOMPLETE'}")
    for key in ("model", "prompt_name", "token_count", "backend", "precision",
                "pipeline", "filter", "tool_version"):
        print(f"  {key}: {m.get(key, '')}")
    tab = t.table()
    print(f"  records: {len(tab)} ({t.valid_bytes} valid bytes)")
    if t.stop_reason:
        print(f"  stopped at {t.stop_reason}")
    stages = sorted(set(tab["stage"].tolist()), key=STAGES.index)
    layers = np.unique(tab["layer"])
    positions = np.unique(tab["position"])
    print(f"  stages: {', '.join(stages)}")
    print(f"  layers: {layers[0]}..{layers[-1]} ({len(layers)})")
    print(f"  positions: {positions[0]}..{positions[-1]} ({len(positions)})")
    for r in t.records[:count]:
        extra = f" top5={r.top5}" if r.top5 else ""
        if r.payload != "hash":
            extra += f" min={r.min:.6g} max={r.max:.6g} l2={r.l2:.6g}"
        print(f"  {r.stage}[L{r.layer}, p{r.position}] {r.dtype}"
              f"{list(r.shape)} sha256={r.sha256[:16]} nz={r.nz_count}{extra}")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 -m greta_trace",
        description="Summarize, dump or verify a GRETA trace directory.")
    ap.add_argument("trace_dir")
    ap.add_argument("--records", type=int, default=5,
                    help="how many records to list (default 5)")
    ap.add_argument("--json", action="store_true",
                    help="print every record as one JSON object per line")
    ap.add_argument("--verify", action="store_true",
                    help="recompute the SHA-256 and non-zero count of every "
                         "record that carries values (payload full) and "
                         "compare them with the recorded ones (e.g. digests "
                         "computed on a GPU); exit 1 on a mismatch")
    args = ap.parse_args(argv)
    try:
        t = read(args.trace_dir)
    except (TraceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.verify:
        return verify(t)
    if args.json:
        print_json(t)
        return 0
    print_summary(args.trace_dir, t, args.records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
