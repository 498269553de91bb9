#!/usr/bin/env python3
"""Runs `greta-run ... --trace-dir DIR` and SIGKILLs it at an exact point.

  kill_run.py --dir DIR --at-bytes N  -- greta-run ARGS...
  kill_run.py --dir DIR --at-manifest -- greta-run ARGS...

--at-bytes N: killed right after the write that makes DIR/records.bin hold
N bytes or more (32 = the file header alone, before any record; 33 = after
the first flush of records; the header is 16 bytes before format 3). --at-manifest: killed right after
DIR/manifest.json appears (records.bin not created yet).

The run is traced with ptrace (ptrace_stop.py): the condition is checked at
every system call the run makes, so the kill lands at the same point on an
idle machine and under load; there is no polling and no clock. Prints what
happened; fails (exit 1) when the run ended without being killed, so the
test cannot pass without killing anything.
"""
import argparse
import os
import signal
import sys
import tempfile

import ptrace_stop

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--at-bytes", type=int)
ap.add_argument("--at-manifest", action="store_true")
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
if a.at_manifest == (a.at_bytes is not None):
    sys.exit("kill_run.py: give exactly one of --at-bytes N, --at-manifest")

rec = os.path.join(a.dir, "records.bin")
man = os.path.join(a.dir, "manifest.json")


def reached():
    if a.at_manifest:
        return os.path.exists(man)
    try:
        return os.path.getsize(rec) >= a.at_bytes
    except OSError:
        return False


with tempfile.NamedTemporaryFile(prefix="kill_run.", suffix=".err") as err:
    status, hit = ptrace_stop.run(
        cmd, reached, lambda pid: os.kill(pid, signal.SIGKILL), err.name,
        watch=rec)
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        sys.stderr.write(open(err.name, errors="replace").read())
        rc = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
              else -os.WTERMSIG(status) if os.WIFSIGNALED(status) else status)
        sys.exit(f"kill_run.py: the run ended with {rc} before the kill point")
if os.path.exists(rec):
    print(f"killed: SIGKILL, records.bin {os.path.getsize(rec)} bytes")
else:
    print("killed: SIGKILL, records.bin absent")
