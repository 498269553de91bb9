#!/usr/bin/env python3
"""Two greta-runs into one trace directory at once.

  lock_run.py DIR -- greta-run ARGS...   (ARGS without --trace-dir)

Starts run A with `--trace-dir DIR` under ptrace (ptrace_stop.py) and holds
it at the first system call after it has written the header of
DIR/records.bin: A then holds the lock and cannot finish. Run B starts into
the same DIR with --overwrite (so only the lock can refuse it) and runs to
its end; its exit code and stderr are printed; then A goes on and its exit
code is printed. No polling, no clock: the same on an idle machine and
under load.
"""
import os
import subprocess
import sys
import tempfile

import ptrace_stop

d = sys.argv[1]
cmd = sys.argv[3:]
rec = os.path.join(d, "records.bin")


def header_written():
    try:
        return os.path.getsize(rec) >= 16
    except OSError:
        return False


def run_b(pid):
    b = subprocess.run(cmd + ["--trace-dir", d, "--overwrite"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sys.stdout.write(b.stderr.decode("utf-8", "replace"))
    print(f"B exit: {b.returncode}", flush=True)


# A stays traced until it exits; LeakSanitizer (ASan builds) cannot stop the
# threads of a traced process at exit, so A alone runs without it (the lone
# run of lock.test has it).
os.environ["ASAN_OPTIONS"] = ":".join(
    filter(None, [os.environ.get("ASAN_OPTIONS", ""), "detect_leaks=0"]))
with tempfile.NamedTemporaryFile(prefix="lock_run.", suffix=".err") as err:
    status, hit = ptrace_stop.run(cmd + ["--trace-dir", d], header_written,
                                  run_b, err.name, watch=rec)
    if not hit:
        sys.exit("lock_run.py: run A ended before writing its records.bin "
                 "header: " + open(err.name, errors="replace").read())
    sys.stdout.write(open(err.name, errors="replace").read())
rc = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
      else f"signal {os.WTERMSIG(status)}")
print(f"A exit: {rc}")
