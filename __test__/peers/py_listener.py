"""A listening socket made by a process that is not Node: CPython binds and
listens (a blocking socket, as a service manager hands them over), sends it
over the socket inherited as fd 3, closes its own copy, and waits for the
peer to close fd 3.

Usage: py_listener.py PATH stream|seqpacket

Prints one JSON line: whether the listener was blocking, and its fd audit.
"""
import socket
import sys

from fdaudit import finish, open_fds


def main():
    path, kind = sys.argv[1], sys.argv[2]
    before = open_fds()
    sock = socket.socket(fileno=3)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET if kind == "seqpacket" else socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    result = {"blocking": listener.getblocking()}
    socket.send_fds(sock, [b"listener"], [listener.fileno()])
    listener.close()
    # Wait for the peer to close its end.
    sock.recv(1)
    finish(sock, result, before)


main()
