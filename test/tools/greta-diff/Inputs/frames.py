"""frames.py COMMAND ...: edits a trace's records.bin frame by frame.

  offset FILE INDEX      print the byte offset of frame INDEX (0-based)
  corrupt FILE INDEX     xor a byte in the middle of frame INDEX's body
                         (its CRC no longer matches)
  cut FILE INDEX         drop every frame after frame INDEX
  unfinish DIR           mark the manifest `complete: false`, as a run that
                         was killed leaves it
  v1 DIR                 rewrite a trace of record frames only as format
                         version 1 (header and manifest), as an older GRETA
                         wrote it
"""
import json
import struct
import sys


def frames(data):
    off = struct.unpack_from("<I", data, 12)[0]  # the header size
    while off + 12 <= len(data):
        magic, length = struct.unpack_from("<II", data, off)
        yield off, magic, length
        off += 12 + length


def frame_at(data, index):
    for i, f in enumerate(frames(data)):
        if i == index:
            return f
    sys.exit(f"no frame {index}")


cmd = sys.argv[1]
if cmd in ("offset", "corrupt", "cut"):
    path, index = sys.argv[2], int(sys.argv[3])
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        off, magic, length = frame_at(data, index)
        if cmd == "offset":
            print(off)
        elif cmd == "cut":
            f.truncate(off + 12 + length)
        else:
            data[off + 8 + length // 2] ^= 0xFF
            f.seek(0)
            f.write(data)
elif cmd == "v1":
    d = sys.argv[2]
    with open(d + "/records.bin", "r+b") as f:
        data = bytearray(f.read())
        if any(m != 0x43455247 for _, m, _ in frames(data)):
            sys.exit("v1 traces hold record frames only")
        # A 16-byte header of version 1 (version 3 added the run id).
        head = struct.unpack_from("<I", data, 12)[0]
        data = data[:8] + struct.pack("<II", 1, 16) + data[head:]
        f.seek(0)
        f.truncate()
        f.write(data)
    with open(d + "/manifest.json") as f:
        m = json.load(f)
    m["format_version"] = 1
    m.pop("run_id", None)  # version 1 had neither
    m.pop("records_digest", None)
    with open(d + "/manifest.json", "w") as f:
        json.dump(m, f, indent=2)
elif cmd == "unfinish":
    path = sys.argv[2] + "/manifest.json"
    with open(path) as f:
        m = json.load(f)
    m["complete"] = False
    with open(path, "w") as f:
        json.dump(m, f, indent=2)
else:
    sys.exit(f"unknown command {cmd}")
