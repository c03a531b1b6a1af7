"""Runs a command as a child subreaper (Linux PR_SET_CHILD_SUBREAPER), so that
the helper processes it starts itself (weston starts its shell and keyboard
clients) are re-parented here when it exits and are reaped here, not left as
zombies of a PID 1 that may reap nothing.

    python3 subreaper.py COMMAND [ARG...]

SIGTERM and SIGINT are forwarded to COMMAND. When COMMAND has exited, the
helpers left behind get SIGTERM (SIGKILL after 5 s) and are waited for. The
last line on stderr says how many processes were reaped; the exit status is
COMMAND's (128 + the signal if a signal ended it)."""

import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def children():
    """The pids of this process's live children (Linux /proc)."""
    pids = []
    task = f"/proc/{os.getpid()}/task"
    for tid in os.listdir(task):
        with open(f"{task}/{tid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    return pids


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"subreaper: prctl: {os.strerror(ctypes.get_errno())}")
    command = os.fork()
    if command == 0:
        os.execvp(sys.argv[1], sys.argv[1:])

    def forward(sig, _frame):
        try:
            os.kill(command, sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    reaped = 0
    status = None
    while status is None:
        pid, st = os.wait()
        reaped += 1
        if pid == command:
            status = st

    # The command is gone: end what it left behind, and reap it.
    deadline = time.monotonic() + 5
    sig = signal.SIGTERM
    while True:
        left = children()
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            reaped += 1
            continue
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        time.sleep(0.02)

    print(f"subreaper: reaped {reaped} processes", file=sys.stderr)
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)


main()
