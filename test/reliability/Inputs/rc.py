#!/usr/bin/env python3
"""Runs a command, passes its output through, then prints `exit: N`.

A command killed by a signal (a crash: SIGSEGV, SIGABRT from a failed
assertion or a sanitizer) prints `exit: signal <name>` and this script fails,
so a test that expects `exit: 1` or `exit: 2` can never pass on a crash.
Usage: rc.py CMD [ARGS...]
"""
import signal
import subprocess
import sys

p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
sys.stdout.write(p.stdout.decode("utf-8", "replace"))
if p.returncode < 0 or p.returncode >= 128:
    sig = -p.returncode if p.returncode < 0 else p.returncode - 128
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = str(sig)
    print(f"exit: signal {name}")
    sys.exit(1)
print(f"exit: {p.returncode}")
