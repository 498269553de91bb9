#!/usr/bin/env python3
"""tamper.py COMMAND DIR ...: damages a trace directory the way a file system,
a careless copy or an attacker would, for the verdict matrix (README.md).

  frames DIR              print the number of frames in records.bin
  cut DIR N               cut records.bin right after frame N (a frame
                          boundary: every frame left is whole and valid)
  flip DIR                xor one byte in the middle of the body of the
                          frame that holds the file's middle byte (its CRC no
                          longer matches; valid frames follow it)
  flip-last DIR           the same in the last frame (nothing follows it)
  swap DIR I J            exchange whole frames I and J (0-based): every
                          frame stays valid, only their order changes
  graft DIR FROM          replace DIR's records.bin by FROM's (another run)
  downgrade DIR           rewrite a format-3 trace as format 2 (a 16-byte
                          header; no run_id, no records_digest), as an
                          older GRETA wrote it
  deep DIR KEY DEPTH      nest KEY's value DEPTH levels deep in manifest.json
  fifo DIR NAME           replace NAME (manifest.json, records.bin) by a FIFO
  unfinish DIR            make the manifest what a run that stopped early
                          leaves: complete false, records 0, no
                          records_digest
  manifest DIR KEY JSON   set KEY of manifest.json to the JSON value (null
                          deletes it)
Header sizes are read from the file (16 bytes up to format 2, 32 from 3).
"""
import json
import os
import shutil
import struct
import sys


def frames(data):
    """(offset, body length) of every whole frame."""
    off = struct.unpack_from("<I", data, 12)[0]
    out = []
    while off + 12 <= len(data):
        length = struct.unpack_from("<I", data, off + 4)[0]
        if off + 12 + length > len(data):
            break
        out.append((off, length))
        off += 12 + length
    return out


def records(d):
    return os.path.join(d, "records.bin")


def load(d):
    with open(records(d), "rb") as f:
        return bytearray(f.read())


def save(d, data):
    with open(records(d), "wb") as f:
        f.write(data)


def flip(d, pick):
    data = load(d)
    fs = frames(data)
    off, length = pick(data, fs)
    data[off + 8 + length // 2] ^= 0xFF
    save(d, data)
    index = fs.index((off, length))
    print(f"flipped byte {off + 8 + length // 2} of frame {index} of "
          f"{len(fs)}, frame at byte {off}")


def middle(data, fs):
    mid = len(data) // 2
    for off, length in fs:
        if off <= mid < off + 12 + length:
            return off, length
    sys.exit("no frame holds the middle byte")


cmd, d = sys.argv[1], sys.argv[2]
if cmd == "frames":
    print(len(frames(load(d))))
elif cmd == "cut":
    n = int(sys.argv[3])
    data = load(d)
    fs = frames(data)
    if not 0 < n < len(fs):
        sys.exit(f"cannot cut after frame {n} of {len(fs)}")
    off, length = fs[n - 1]
    save(d, data[:off + 12 + length])
    print(f"cut after frame {n} of {len(fs)} at byte {off + 12 + length}")
elif cmd == "flip":
    flip(d, middle)
elif cmd == "flip-last":
    flip(d, lambda data, fs: fs[-1])
elif cmd == "swap":
    i, j = int(sys.argv[3]), int(sys.argv[4])
    data = load(d)
    fs = frames(data)
    whole = [bytes(data[o:o + 12 + n]) for o, n in fs]
    whole[i], whole[j] = whole[j], whole[i]
    head = struct.unpack_from("<I", data, 12)[0]
    save(d, data[:head] + b"".join(whole) + data[fs[-1][0] + 12 + fs[-1][1]:])
elif cmd == "downgrade":
    data = load(d)
    head = struct.unpack_from("<I", data, 12)[0]
    save(d, data[:8] + struct.pack("<II", 2, 16) + data[head:])
    path = os.path.join(d, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    m["format_version"] = 2
    m.pop("run_id", None)
    m.pop("records_digest", None)
    with open(path, "w") as f:
        json.dump(m, f, indent=2)
elif cmd == "graft":
    shutil.copyfile(records(sys.argv[3]), records(d))
elif cmd == "deep":
    key, depth = sys.argv[3], int(sys.argv[4])
    path = os.path.join(d, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    value = json.dumps(m.get(key, 0))
    m[key] = "@DEEP@"
    text = json.dumps(m).replace('"@DEEP@"', "[" * depth + value + "]" * depth)
    with open(path, "w") as f:
        f.write(text)
elif cmd == "fifo":
    path = os.path.join(d, sys.argv[3])
    os.remove(path)
    os.mkfifo(path)
elif cmd == "unfinish":
    path = os.path.join(d, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    m.update(complete=False, records=0)
    m.pop("records_digest", None)
    with open(path, "w") as f:
        json.dump(m, f, indent=2)
elif cmd == "manifest":
    key, value = sys.argv[3], json.loads(sys.argv[4])
    path = os.path.join(d, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    if value is None:
        m.pop(key, None)
    else:
        m[key] = value
    with open(path, "w") as f:
        json.dump(m, f, indent=2)
else:
    sys.exit(f"unknown command {cmd}")
