"""Print a safetensors file's tensors as `name dims dtype` lines (sorted), or
with --values NAME N the first N values of one tensor. Standard library only,
so the lit test runs without numpy."""
import json
import struct
import sys

FORMATS = {"F32": ("<f", 4), "F16": ("<e", 2)}


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data_start = 8 + n
        header.pop("__metadata__", None)
        if len(sys.argv) > 2 and sys.argv[2] == "--values":
            name, count = sys.argv[3], int(sys.argv[4])
            info = header[name]
            begin = info["data_offsets"][0]
            if info["dtype"] == "BF16":
                f.seek(data_start + begin)
                raw = f.read(2 * count)
                vals = [struct.unpack("<f", b"\0\0" + raw[2 * i:2 * i + 2])[0]
                        for i in range(count)]
            else:
                fmt, size = FORMATS[info["dtype"]]
                f.seek(data_start + begin)
                raw = f.read(size * count)
                vals = [struct.unpack(fmt, raw[size * i:size * (i + 1)])[0]
                        for i in range(count)]
            print(" ".join("%.6e" % v for v in vals))
            return
    for name in sorted(header):
        info = header[name]
        dims = "x".join(str(d) for d in info["shape"])
        print(name, dims, info["dtype"])


if __name__ == "__main__":
    main()
