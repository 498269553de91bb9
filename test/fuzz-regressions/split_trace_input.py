#!/usr/bin/env python3
"""Turns a greta-fuzz-trace input into a trace directory, and back.

  split_trace_input.py INPUT DIR    write DIR/manifest.json and DIR/records.bin
  split_trace_input.py --pack DIR [--patch-crc] OUTPUT

The layout is the one fuzz/TraceFuzzer.cpp reads: byte 0 flags (bit 0:
rewrite the CRC of every complete frame), bytes 1-2 the manifest length
(u16 LE, clamped to what is left), the manifest, then records.bin.
"""
import os
import struct
import sys
import zlib


def patch_crcs(rec: bytearray) -> None:
    # Frames start at the header size (16 bytes up to format 2, 32 from 3).
    off = struct.unpack_from("<I", rec, 12)[0] if len(rec) >= 16 else 16
    off = off if 16 <= off <= len(rec) else 16
    while off + 12 <= len(rec):
        (length,) = struct.unpack_from("<I", rec, off + 4)
        if len(rec) - off - 12 < length:
            break
        body = bytes(rec[off + 8 : off + 8 + length])
        struct.pack_into("<I", rec, off + 8 + length, zlib.crc32(body) & 0xFFFFFFFF)
        off += 12 + length


def split(inp: str, out: str) -> None:
    data = open(inp, "rb").read()
    os.makedirs(out, exist_ok=True)
    if len(data) < 3:  # the fuzzer skips these; an empty trace directory
        open(os.path.join(out, "manifest.json"), "wb").close()
        open(os.path.join(out, "records.bin"), "wb").close()
        return
    flags = data[0]
    n = min(data[1] | data[2] << 8, len(data) - 3)
    manifest = data[3 : 3 + n]
    rec = bytearray(data[3 + n :])
    if flags & 1:
        patch_crcs(rec)
    open(os.path.join(out, "manifest.json"), "wb").write(manifest)
    open(os.path.join(out, "records.bin"), "wb").write(bytes(rec))


def pack(d: str, out: str, crc: bool) -> None:
    manifest = open(os.path.join(d, "manifest.json"), "rb").read()
    rec = open(os.path.join(d, "records.bin"), "rb").read()
    assert len(manifest) < 65536
    head = bytes([1 if crc else 0]) + struct.pack("<H", len(manifest))
    open(out, "wb").write(head + manifest + rec)


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "--pack":
        crc = "--patch-crc" in a
        a = [x for x in a[1:] if x != "--patch-crc"]
        pack(a[0], a[1], crc)
    elif len(a) == 2:
        split(a[0], a[1])
    else:
        sys.exit(__doc__)
