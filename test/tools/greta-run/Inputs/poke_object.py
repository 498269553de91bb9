"""Changes the attention scale constant (1/sqrt(head_dim), as f32 or f64) in
every compiled object of a greta-run cache dir, in place: the edit of
issue #18 that a cache must not load. Falls back to 8 bytes in the middle of
the file if the constant is not found. Weights-digest entries are left alone.

Usage: poke_object.py CACHE_DIR HEAD_DIM
"""
import math
import os
import struct
import sys

cache, head_dim = sys.argv[1], int(sys.argv[2])
scale = 1.0 / math.sqrt(head_dim)
poked = 0
for name in sorted(os.listdir(cache)):
    if name.startswith("weights-"):
        continue
    path = os.path.join(cache, name)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    how = "middle"
    for fmt in ("<f", "<d"):
        at = data.find(struct.pack(fmt, scale))
        if at >= 0:
            data[at:at + struct.calcsize(fmt)] = struct.pack(fmt, 2 * scale)
            how = "scale " + fmt
            break
    else:
        mid = len(data) // 2
        data[mid:mid + 8] = bytes(b ^ 0xFF for b in data[mid:mid + 8])
    with open(path, "r+b") as f:
        f.write(data)
    poked += 1
    print("poked", name, how)
if not poked:
    raise SystemExit("no compiled object in " + cache)
