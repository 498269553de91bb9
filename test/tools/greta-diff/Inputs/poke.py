"""poke.py FILE OFFSET [VALUE]: xor the byte at OFFSET (negative: from the
end) with 0xff, or write the u32 little-endian VALUE there."""
import struct
import sys

path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    data = bytearray(f.read())
    if off < 0:
        off += len(data)
    if len(sys.argv) > 3:
        data[off:off + 4] = struct.pack("<I", int(sys.argv[3]))
    else:
        data[off] ^= 0xFF
    f.seek(0)
    f.write(data)
