#!/usr/bin/env python3
"""Checks with the Python reader that trace PREFIX is a prefix of trace FULL.

  prefix_check.py GRETA_SRC PREFIX FULL

Prints `prefix: N records of M, complete=<bool>, stop=<reason or clean>,
tail=<bytes after the last valid frame>` and then `prefix-ok` when every
record of PREFIX equals FULL's record at the same index (stage, layer,
position, sha256, values); exits 1 otherwise.
"""
import os
import sys

sys.path.insert(0, os.path.join(sys.argv[1], "python"))
import greta_trace  # noqa: E402

p = greta_trace.read(sys.argv[2])
f = greta_trace.read(sys.argv[3])
size = os.path.getsize(os.path.join(sys.argv[2], "records.bin"))
print(f"prefix: {len(p.records)} records of {len(f.records)}, "
      f"complete={p.complete}, stop={p.stop_reason or 'clean'}, "
      f"tail={size - p.valid_bytes}")
if not p.records or len(p.records) > len(f.records):
    sys.exit("not a prefix: record count")
for i, (a, b) in enumerate(zip(p.records, f.records)):
    ka = (a.stage, a.layer, a.position, a.sha256)
    kb = (b.stage, b.layer, b.position, b.sha256)
    if ka != kb or (a.values is None) != (b.values is None) or (
            a.values is not None and a.values.tobytes() != b.values.tobytes()):
        sys.exit(f"record {i} differs: {ka} vs {kb}")
print("prefix-ok")
