"""Renders an HTML report in headless Chromium and checks what a reader sees.

browser.py PAGE.html WORKDIR [--id ID] [--marker RRGGBB] [--min-marker N]

1. `chromium --dump-dom`: the DOM after rendering is written to
   WORKDIR/dom.html and must hold an element with id ID.
2. `chromium --screenshot` (1400x1800): WORKDIR/shot.png is decoded here
   (zlib, no PIL) and must not be blank (enough non-white pixels and
   colours) and must hold at least N pixels of exactly the marker colour.
Prints what it measured; exits 1 naming the failed check.
"""
import argparse
import os
import struct
import subprocess
import sys
import zlib

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
WIDTH, HEIGHT = 1400, 1800


def chromium(workdir, name, args, url):
    profile = os.path.join(workdir, "profile-" + name)
    os.makedirs(profile, exist_ok=True)
    cmd = ["chromium"] + FLAGS + ["--user-data-dir=" + profile] + args + [url]
    with open(os.path.join(workdir, name + ".log"), "wb") as log:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log)
    if out.returncode != 0:
        sys.exit("chromium exited %d: %s" % (out.returncode, " ".join(cmd)))
    return out.stdout


def decode_png(data):
    """RGB(A) 8-bit non-interlaced PNG -> (width, height, channels, rows)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("screenshot is not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if depth != 8 or ctype not in (2, 6) or interlace:
        sys.exit("unexpected PNG: depth %d colour type %d interlace %d"
                 % (depth, ctype, interlace))
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * ch
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("workdir")
    ap.add_argument("--id", default="first-fail-cell")
    ap.add_argument("--marker", default="0050ff")
    ap.add_argument("--min-marker", type=int, default=200)
    a = ap.parse_args()
    url = "file://" + os.path.abspath(a.page)

    dom = chromium(a.workdir, "dom", ["--dump-dom"], url).decode()
    with open(os.path.join(a.workdir, "dom.html"), "w") as f:
        f.write(dom)
    if ('id="%s"' % a.id) not in dom:
        sys.exit("the rendered DOM has no element with id %s" % a.id)
    print("dom: id %s present" % a.id)

    shot = os.path.join(a.workdir, "shot.png")
    chromium(a.workdir, "shot", ["--screenshot=" + shot,
                                 "--window-size=%d,%d" % (WIDTH, HEIGHT)], url)
    with open(shot, "rb") as f:
        w, h, ch, rows = decode_png(f.read())
    marker = bytes.fromhex(a.marker)
    colours, nonwhite, marked = set(), 0, 0
    for line in rows:
        for x in range(0, w * ch, ch):
            px = line[x:x + 3]
            colours.add(px)
            nonwhite += px != b"\xff\xff\xff"
            marked += px == marker
    share = nonwhite / (w * h)
    print("screenshot: %dx%d, %d colours, %.1f%% non-white, %d marker pixels"
          % (w, h, len(colours), 100 * share, marked))
    if (w, h) != (WIDTH, HEIGHT):
        sys.exit("screenshot is %dx%d, not %dx%d" % (w, h, WIDTH, HEIGHT))
    if len(colours) < 50 or share < 0.02:
        sys.exit("the page looks blank")
    if marked < a.min_marker:
        sys.exit("only %d pixels of the marker colour #%s (want >= %d)"
                 % (marked, a.marker, a.min_marker))
    print("browser check: ok")


if __name__ == "__main__":
    main()
