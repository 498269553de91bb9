"""Ctrl-C on greta-bisect while a test run is under way (interrupt.test).

Starts greta-bisect (the arguments after --) as from a terminal under
`nohup`: SIGINT at its default (lit's runner may have it ignored, and a
signal ignored at start stays ignored) and SIGHUP ignored. Waits until the
stand-in test run (Inputs/hanging-run.sh) has written its pid, sends SIGHUP
then SIGINT to greta-bisect alone (its children run in a process group of
their own, which a terminal's Ctrl-C would not reach; the ignored SIGHUP must
stay ignored, so the report names signal 2), and checks: exit code 130, the
child's whole process group is gone, no process still names the work dir, no
step of the interrupted run was recorded, and nothing claims a failed test
run.

Usage: interrupt_bisect.py PIDFILE WORKDIR -- greta-bisect ARGS...
"""
import json
import os
import signal
import subprocess
import sys

pidfile, workdir = sys.argv[1], sys.argv[2]
cmd = sys.argv[sys.argv.index("--") + 1:]
child = None


def fail(msg):
    """Fails the test, killing what it started so that nothing outlives it
    (a greta-bisect that does not forward the signal leaves its run)."""
    print("FAIL:", msg)
    for kill in (lambda: bisect.kill(), lambda: os.killpg(child, 9)):
        try:
            kill()
        except (ProcessLookupError, PermissionError, TypeError):
            pass
    sys.exit(1)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


bisect = subprocess.Popen(
    cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL),
                        signal.signal(signal.SIGHUP, signal.SIG_IGN)))
# Wait for the test run to be under way: its pid file appears, or greta-bisect
# ends on its own (then the test fails).
while not os.path.exists(pidfile):
    if bisect.poll() is not None:
        out, err = bisect.communicate()
        fail("greta-bisect ended before the test run started (exit %d):\n%s%s"
             % (bisect.returncode, out, err))
    os.sched_yield()
child = int(open(pidfile).read())


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


# The stand-in writes its pid, then execs `sleep`: wait for the exec (a
# shell that is signalled just before its exec would swallow the signal).
while comm(child) != "sleep":
    if comm(child) is None or bisect.poll() is not None:
        fail("the test run %d ended before it was interrupted" % child)
    os.sched_yield()
os.kill(bisect.pid, signal.SIGHUP)
os.kill(bisect.pid, signal.SIGINT)
out, err = bisect.communicate()
print("exit", bisect.returncode)
print(err, end="")
print(out, end="")
if alive(child):
    fail("the test run %d outlived greta-bisect" % child)
try:
    os.killpg(child, 0)
    fail("the test run's process group %d is still there" % child)
except ProcessLookupError:
    pass
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        continue
    if int(pid) != os.getpid() and any(workdir.encode() in a for a in argv):
        fail("process %s still runs in the work dir: %r" % (pid, argv))
state = os.path.join(workdir, "state.json")
steps = json.load(open(state))["steps"] if os.path.exists(state) else {}
print("recorded steps:", sorted(steps))
