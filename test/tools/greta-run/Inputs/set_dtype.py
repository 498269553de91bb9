"""Rewrites the dtype of one tensor in a safetensors header, in place.

Usage: set_dtype.py FILE TENSOR DTYPE. The new dtype name must have the same
length as the old one (F32 -> I32), so offsets and sizes stay valid.
"""
import json
import struct
import sys

path, tensor, dtype = sys.argv[1:4]
with open(path, "r+b") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    old = header[tensor]["dtype"]
    assert len(old) == len(dtype), (old, dtype)
    header[tensor]["dtype"] = dtype
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (n - len(text))
    assert len(text) == n
    f.seek(8)
    f.write(text)
