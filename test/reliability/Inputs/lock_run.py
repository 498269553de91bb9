#!/usr/bin/env python3
"""Two greta-runs into one trace directory at once.

  lock_run.py DIR -- greta-run ARGS...   (ARGS without --trace-dir)

Starts run A with `--trace-dir DIR`, waits until it has written records
(it holds the lock), SIGSTOPs it so it is certainly still running, starts
run B into the same DIR with --overwrite (so only the lock can refuse it),
prints B's exit code and stderr, then SIGCONTs A and prints A's exit code.
"""
import os
import signal
import subprocess
import sys
import time

d = sys.argv[1]
cmd = sys.argv[3:]
rec = os.path.join(d, "records.bin")
a = subprocess.Popen(cmd + ["--trace-dir", d], stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
deadline = time.time() + 300
while a.poll() is None and time.time() < deadline:
    if os.path.exists(rec) and os.path.getsize(rec) > 16:
        break
    time.sleep(0.0005)
if a.poll() is not None:
    sys.exit(f"lock_run.py: run A ended ({a.returncode}) before B could start")
os.kill(a.pid, signal.SIGSTOP)
b = subprocess.run(cmd + ["--trace-dir", d, "--overwrite"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
sys.stdout.write(b.stderr.decode("utf-8", "replace"))
print(f"B exit: {b.returncode}")
os.kill(a.pid, signal.SIGCONT)
a.wait()
sys.stdout.write(a.stderr.read().decode("utf-8", "replace"))
print(f"A exit: {a.returncode}")
