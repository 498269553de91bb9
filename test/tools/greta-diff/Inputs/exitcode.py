"""Runs a command, passes its output through, then prints `exit: N`.

lit's internal shell has no `$?`; greta-diff's contract distinguishes 1
(divergence) from 2 (error), which `not` cannot.
"""
import subprocess
import sys

rc = subprocess.call(sys.argv[1:])
sys.stdout.flush()
print(f"exit: {rc}", flush=True)
