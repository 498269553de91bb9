#!/usr/bin/env python3
"""Starts `greta-run ... --trace-dir DIR`, SIGKILLs it at a chosen point.

  kill_run.py --dir DIR --at-bytes N  -- greta-run ARGS...
  kill_run.py --dir DIR --at-manifest -- greta-run ARGS...

--at-bytes N: SIGSTOP the run as soon as DIR/records.bin holds at least N
bytes, then SIGKILL it (stopping first makes the kill point exact: the file
cannot grow between the check and the kill). --at-manifest: kill as soon as
DIR/manifest.json exists (before the first record). Prints what happened;
fails (exit 1) when the run finished before the kill point, so the test
cannot pass without killing anything.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--at-bytes", type=int)
ap.add_argument("--at-manifest", action="store_true")
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

rec = os.path.join(a.dir, "records.bin")
man = os.path.join(a.dir, "manifest.json")
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
deadline = time.time() + 300
while p.poll() is None and time.time() < deadline:
    if a.at_manifest:
        hit = os.path.exists(man)
    else:
        hit = os.path.exists(rec) and os.path.getsize(rec) >= a.at_bytes
    if hit:
        os.kill(p.pid, signal.SIGSTOP)
        os.kill(p.pid, signal.SIGKILL)
        break
    time.sleep(0.0005)
rc = p.wait()
if rc != -signal.SIGKILL:
    sys.stderr.write(p.stderr.read().decode("utf-8", "replace"))
    sys.exit(f"kill_run.py: the run ended with {rc} before the kill point")
size = os.path.getsize(rec) if os.path.exists(rec) else -1
print(f"killed: SIGKILL, records.bin {size} bytes")
