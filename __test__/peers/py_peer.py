"""A peer that no one in fdpass wrote: CPython's socket.send_fds / recv_fds.

Usage: py_peer.py send|recv|kinds  (the socket is inherited as fd 3)

  send   sends b"from-python" with one fd of a temporary file holding
         "python file contents", then waits for the peer to close.
  recv   receives one message with up to 10 fds, reads each fd from the
         start and prints what it read.
  kinds  sends an eventfd, then an O_PATH fd of a symlink (one per message).

Prints one JSON line with the results and whether its own fd table came back
to what it was (the fd audit of this process).
"""
import os
import socket
import sys
import tempfile

from fdaudit import finish, open_fds


def main():
    mode = sys.argv[1]
    before = open_fds()
    sock = socket.socket(fileno=3)
    result = {}
    if mode == "send":
        with tempfile.TemporaryFile() as f:
            f.write(b"python file contents")
            f.flush()
            f.seek(0)
            sent = socket.send_fds(sock, [b"from-python"], [f.fileno()])
            result["sent"] = sent
            # Wait for the peer to take the message and close its end.
            sock.recv(1)
    elif mode == "recv":
        data, fds, flags, _ = socket.recv_fds(sock, 1024, 10)
        result["data"] = data.decode()
        result["flags"] = flags
        result["contents"] = []
        for fd in fds:
            os.lseek(fd, 0, os.SEEK_SET)
            result["contents"].append(os.read(fd, 100).decode())
            os.close(fd)
    elif mode == "kinds":
        efd = os.eventfd(0)
        socket.send_fds(sock, [b"eventfd"], [efd])
        os.close(efd)
        d = tempfile.mkdtemp()
        link = os.path.join(d, "link")
        os.symlink("/nonexistent-target", link)
        pfd = os.open(link, os.O_PATH | os.O_NOFOLLOW)
        socket.send_fds(sock, [b"symlink"], [pfd])
        os.close(pfd)
        os.unlink(link)
        os.rmdir(d)
        sock.recv(1)
    else:
        raise SystemExit(f"unknown mode {mode}")
    finish(sock, result, before)


if __name__ == "__main__":
    main()
