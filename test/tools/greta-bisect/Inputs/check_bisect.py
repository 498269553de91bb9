#!/usr/bin/env python3
"""Checks a greta-bisect JSON report against what a test planted.

    check_bisect.py REPORT --stage S --layer L --position P [--max-runs N]
                    [--full-dump DIR ...] [--max-fraction F]

Fails (exit 1, message on stderr) unless the first prompt's FIRST_FAIL is
exactly (S, L, P), its runs per configuration are at most N, and, with
--full-dump, the bytes the bisection wrote are at most F of the bytes the
given full-payload trace directories hold.
"""
import argparse
import json
import os
import sys


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            if not f.endswith(".log") and f != ".lock":
                total += os.path.getsize(os.path.join(root, f))
    return total


ap = argparse.ArgumentParser()
ap.add_argument("report")
ap.add_argument("--stage", required=True)
ap.add_argument("--layer", type=int, required=True)
ap.add_argument("--position", type=int, required=True)
ap.add_argument("--max-runs", type=int)
ap.add_argument("--full-dump", nargs="*", default=[])
ap.add_argument("--max-fraction", type=float, default=0.02)
args = ap.parse_args()

with open(args.report) as f:
    report = json.load(f)
p = report["prompts"][0]
ff = p["first_fail"]
errors = []
if ff is None:
    errors.append("no FIRST_FAIL reported")
else:
    got = (ff["stage"], ff["layer"], ff["position"])
    want = (args.stage, args.layer, args.position)
    if got != want:
        errors.append("FIRST_FAIL is %s, planted %s" % (got, want))
if args.max_runs is not None and p["runs"] > args.max_runs:
    errors.append("%d runs per configuration > %d" % (p["runs"], args.max_runs))
if args.full_dump:
    full = sum(dir_bytes(d) for d in args.full_dump)
    frac = p["bytes_written"] / full
    print("bisection wrote %d bytes = %.4f of a full dump (%d bytes)"
          % (p["bytes_written"], frac, full))
    if frac > args.max_fraction:
        errors.append("wrote %.4f of the full dump's bytes > %.4f"
                      % (frac, args.max_fraction))
for e in errors:
    print("check_bisect: " + e, file=sys.stderr)
if not errors:
    print("ok: %s layer %d position %d in %d runs per configuration"
          % (ff["stage"], ff["layer"], ff["position"], p["runs"]))
sys.exit(1 if errors else 0)
