"""The weights digest of docs/TRACE_FORMAT.md, written again from its
definition (no GRETA code), plus the file edits the tests need.

  weights_digest.py digest FILE            -> {"whole": .., "tensors": {..}}
  (FILE may be an HF checkpoint directory: its index's shards, read as one)
  weights_digest.py widen IN OUT DTYPE     -> OUT holds IN's values as F32/F64
  weights_digest.py poke FILE TENSOR       -> negate the tensor's first value,
                                              in place (same size)
  weights_digest.py check MANIFEST FILE    -> "match" if the manifest names
                                              FILE's digests, else what differs
  weights_digest.py changed MANIFEST MANIFEST -> tensors whose digests differ
"""
import hashlib
import json
import os
import struct
import sys
from array import array

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return header, data[8 + n:]


def as_f64_bytes(dtype, raw):
    if dtype == "F64":
        return raw
    if dtype == "F32":
        return array("d", array("f", raw)).tobytes()
    if dtype == "F16":
        return array("d", struct.unpack("<%de" % (len(raw) // 2), raw)).tobytes()
    if dtype == "BF16":  # bf16 is the upper half of an f32
        wide = bytearray(2 * len(raw))
        wide[2::4] = raw[0::2]
        wide[3::4] = raw[1::2]
        return array("d", array("f", bytes(wide))).tobytes()
    raise SystemExit("unsupported dtype " + dtype)


def u64(v):
    return struct.pack("<Q", v)


def read_tensors(path):
    """Tensor name -> (dtype, shape, raw bytes), of a file or of a sharded
    checkpoint directory (model.safetensors.index.json's weight_map)."""
    if os.path.isdir(path):
        with open(os.path.join(path, "model.safetensors.index.json")) as f:
            weight_map = json.load(f)["weight_map"]
        out = {}
        for shard in sorted(set(weight_map.values())):
            for name, t in read_tensors(os.path.join(path, shard)).items():
                if weight_map.get(name) == shard:
                    out[name] = t
        return out
    header, body = read(path)
    return {name: (e["dtype"], e["shape"],
                   body[e["data_offsets"][0]:e["data_offsets"][1]])
            for name, e in header.items()}


def digest(path):
    tensors = {}
    for name, (dtype, shape, raw) in sorted(read_tensors(path).items()):
        h = hashlib.sha256()
        h.update(u64(len(name.encode())) + name.encode())
        h.update(u64(len(shape)) + b"".join(u64(d) for d in shape))
        h.update(as_f64_bytes(dtype, raw))
        tensors[name] = h.hexdigest()
    whole = hashlib.sha256()
    for name in sorted(tensors):
        whole.update(u64(len(name.encode())) + name.encode())
        whole.update(bytes.fromhex(tensors[name]))
    return {"whole": whole.hexdigest(), "tensors": tensors}


def widen(src, dst, dtype):
    header, body = read(src)
    out_header, chunks, offset = {}, [], 0
    for name in sorted(header):
        e = header[name]
        begin, end = e["data_offsets"]
        wide = as_f64_bytes(e["dtype"], body[begin:end])
        if dtype == "F32":
            wide = array("f", array("d", wide)).tobytes()
        out_header[name] = {"dtype": dtype, "shape": e["shape"],
                            "data_offsets": [offset, offset + len(wide)]}
        chunks.append(wide)
        offset += len(wide)
    text = json.dumps(out_header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(dst, "wb") as f:
        f.write(u64(len(text)) + text + b"".join(chunks))


def poke(path, tensor):
    header, _ = read(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    e = header[tensor]
    size = SIZES[e["dtype"]]
    at = 8 + n + e["data_offsets"][0] + size - 1  # the sign bit's byte
    with open(path, "r+b") as f:
        f.seek(at)
        (b,) = f.read(1)
        f.seek(at)
        f.write(bytes([b ^ 0x80]))


def manifest(path):
    with open(path) as f:
        m = json.load(f)
    return m["weights_digest"], m["weights_tensor_digests"]


def check(manifest_path, weights_path):
    whole, tensors = manifest(manifest_path)
    want = digest(weights_path)
    if whole == want["whole"] and tensors == want["tensors"]:
        print("match")
    else:
        print("MISMATCH: manifest", whole, "computed", want["whole"],
              "tensors differing:",
              sorted(k for k in set(tensors) | set(want["tensors"])
                     if tensors.get(k) != want["tensors"].get(k)))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "digest":
        print(json.dumps(digest(sys.argv[2]), sort_keys=True))
    elif cmd == "widen":
        widen(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "poke":
        poke(sys.argv[2], sys.argv[3])
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3])
    elif cmd == "changed":
        (wa, a), (wb, b) = manifest(sys.argv[2]), manifest(sys.argv[3])
        print("whole", "same" if wa == wb else "differs")
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                print("changed", k)
    else:
        raise SystemExit("unknown command " + cmd)
