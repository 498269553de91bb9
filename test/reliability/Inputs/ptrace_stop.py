"""Runs a command under ptrace and stops it at an exact point (Linux).

The fault tests need a greta-run frozen or killed at a chosen point of its
trace ("right after records.bin reached N bytes"). Polling the file from
outside is a race: the run keeps writing while the poller sleeps or waits
for a CPU, so under load it may pass the point, or finish, before the
poller looks. Here the tracer decides at every system call the run makes
(entry and exit, every thread): the run cannot touch a file between two
such stops, so the condition is checked after each write and nothing
happens between the write that meets it and the action. No clock is
involved.

  run(cmd, cond, on_hit, stderr_path, watch=PATH) -> (status, hit)

cond() is called at every stop, except while a thread of the run is inside
a system call on `watch` (one whose first argument is a descriptor of that
file, e.g. a write to records.bin): the file may be half-written then (its
size grows page by page during a write), so the check waits for the end of
that call. The first time cond() returns true, on_hit(pid) runs while the
thread that stopped stays stopped (kill the run with SIGKILL, or do
something else and return to let it continue to its end). status is the
run's wait status.
"""
import ctypes
import os
import signal

PTRACE_TRACEME = 0
PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_EXITKILL = 0x100000
PTRACE_EVENT_EXEC = 4
WALL = 0x40000000  # __WALL: threads too

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                         ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


def _ptrace(req, pid, addr=0, data=0):
    r = _libc.ptrace(req, pid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _resume(tid, sig=0):
    try:
        _ptrace(PTRACE_SYSCALL, tid, 0, sig)
    except OSError:
        pass  # the thread is gone (killed or exited): nothing to resume


def available():
    """True where this process may trace its children."""
    pid = os.fork()
    if pid == 0:
        try:
            _ptrace(PTRACE_TRACEME, 0)
            os.kill(os.getpid(), signal.SIGSTOP)
        except OSError:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSTOPPED(status):
        # Stopped under the tracer: tracing works. Let it go.
        _resume(pid)
        _, status = os.waitpid(pid, 0)
        return True
    return False


def _on_watched_file(pid, tid, watched):
    """At a system-call entry stop: is the call's first argument a file
    descriptor of `watched`? /proc/TID/syscall reads "NR ARG1 ARG2 ..."."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            fields = f.read().split()
        fd = int(fields[1], 16)
        if fd < 0 or fd > 1 << 20:
            return False
        return os.readlink(f"/proc/{pid}/fd/{fd}") == watched
    except (OSError, ValueError, IndexError):
        return False


def run(cmd, cond, on_hit, stderr_path, watch=None, stdout_path=os.devnull):
    out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(out, 1)
            os.dup2(err, 2)
            _ptrace(PTRACE_TRACEME, 0)
            os.execvp(cmd[0], cmd)
        except BaseException as e:  # noqa: BLE001 - report and leave
            os.write(2, f"ptrace_stop.py: cannot run {cmd[0]}: {e}\n".encode())
        os._exit(127)
    os.close(out)
    os.close(err)

    # First stop: the SIGTRAP after execve.
    _, status = os.waitpid(pid, 0)
    if not os.WIFSTOPPED(status):
        return status, False
    _ptrace(PTRACE_SETOPTIONS, pid, 0,
            PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC |
            PTRACE_O_EXITKILL)
    watched = os.path.realpath(watch) if watch else None
    known = {pid}
    in_call = {}  # tid -> inside a system call (entry seen, exit not yet)
    busy = set()  # tids inside a system call on the watched file
    hit = False
    _resume(pid)
    while True:
        tid, status = os.waitpid(-1, WALL)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            known.discard(tid)
            busy.discard(tid)
            in_call.pop(tid, None)
            if tid == pid:
                return status, hit
            continue
        if not os.WIFSTOPPED(status):
            continue
        sig = os.WSTOPSIG(status)
        event = status >> 16
        deliver = 0
        if sig == (signal.SIGTRAP | 0x80) or event:
            # A system-call stop (entry and exit alternate) or a ptrace event
            # (clone, exec: inside a call): where the condition is checked.
            if not event:
                entering = not in_call.get(tid, False)
                in_call[tid] = entering
                if entering and watched and _on_watched_file(pid, tid, watched):
                    busy.add(tid)
                elif not entering:
                    busy.discard(tid)
            if not hit and not busy and cond():
                hit = True
                on_hit(pid)
        elif tid not in known:
            # A new thread's first stop (SIGSTOP from the clone): swallow it.
            known.add(tid)
        else:
            deliver = sig  # a real signal to the run: pass it on
        known.add(tid)
        _resume(tid, deliver)
