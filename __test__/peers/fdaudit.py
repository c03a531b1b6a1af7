"""Fd audit for the Python peers: the fds open at the end must be those open
at the start, less the socket handed over as fd 3 (nothing leaked, nothing
closed by mistake)."""

import json
import os
import sys


def open_fds():
    names = os.listdir("/proc/self/fd" if sys.platform == "linux" else "/dev/fd")

    def is_open(fd):
        try:
            os.fstat(fd)
            return True
        except OSError:
            return False

    # listdir's own directory fd is in the listing but closed by now.
    return sorted(fd for fd in map(int, names) if is_open(fd))


def finish(sock, result, before):
    """Closes fd 3 (`sock`), audits the fds against `before` and prints `result` as JSON."""
    sock.detach()
    os.close(3)
    after = open_fds()
    result["fd_audit_ok"] = after == [fd for fd in before if fd != 3]
    result["fds_before"] = before
    result["fds_after"] = after
    print(json.dumps(result), flush=True)
