"""A Python peer for the reliability tests, socket on fd 3.

Usage: rel_py_peer.py kinds|shared

  kinds   creates one fd of every kind Node cannot make itself and sends each
          (one message per kind, data = the kind's name): a regular file, a
          directory, both ends of a pipe, a unix socket (one end of a pair), a
          listening TCP socket, a connected TCP socket, an eventfd, a memfd.
          Then it waits for the peer to use them and send all of them back in
          one message, checks that each one that came back is the same open
          file (st_dev/st_ino) and that what the peer did through them shows
          on its own copies (pipe, unix socket, TCP socket, eventfd, memfd).
  shared  sends a file whose offset it set to 5 and a pipe read end it made
          non-blocking; after the peer's "step" it reports its file offset and
          clears O_NONBLOCK, sends "cleared", waits for "done".

Prints one JSON line with the results and its own fd audit.
"""
import os
import socket
import sys
import tempfile

from fdaudit import finish, open_fds


def ident(fd):
    st = os.fstat(fd)
    return [st.st_dev, st.st_ino]


def recv_msg(sock, maxfds=253):
    data, fds, flags, _ = socket.recv_fds(sock, 65536, maxfds)
    return data.decode(), fds, flags


def read_exact(fd, n):
    out = b""
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def kinds(sock, result):
    tmpdir = tempfile.mkdtemp(prefix="fdpass-rel-")
    with open(os.path.join(tmpdir, "inside"), "w") as f:
        f.write("dir-entry")
    path = os.path.join(tmpdir, "regular")
    with open(path, "w") as f:
        f.write("regular contents")
    reg = os.open(path, os.O_RDWR)
    os.unlink(path)
    dirfd = os.open(tmpdir, os.O_RDONLY | os.O_DIRECTORY)
    pr, pw = os.pipe()
    os.write(pw, b"py-pipe")
    u1, u2 = socket.socketpair()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    client = socket.create_connection(listener.getsockname(), timeout=10)
    accepted, _ = listener.accept()
    accepted.settimeout(10)
    efd = os.eventfd(0)
    mfd = os.memfd_create("fdpass-rel")
    os.write(mfd, b"memfd contents")
    originals = {
        "file": reg,
        "directory": dirfd,
        "pipe-read": pr,
        "pipe-write": pw,
        "unix": u1.fileno(),
        "tcp-listen": listener.fileno(),
        "tcp": client.fileno(),
        "eventfd": efd,
        "memfd": mfd,
    }
    result["port"] = listener.getsockname()[1]
    for name, fd in originals.items():
        socket.send_fds(sock, [name.encode()], [fd])
    # The peer uses every fd, then sends them all back in one message, in the
    # order above.
    data, back, _ = recv_msg(sock)
    result["back_data"] = data
    result["back_count"] = len(back)
    result["same_files"] = [ident(b) == ident(o) for b, o in zip(back, originals.values())]
    for fd in back:
        os.close(fd)
    # What the peer did through its copies shows on ours.
    result["pipe"] = read_exact(pr, len(b"node-pipe")).decode()
    u2.settimeout(10)
    result["unix"] = u2.recv(100).decode()
    result["tcp"] = accepted.recv(100).decode()
    result["eventfd"] = os.eventfd_read(efd)
    result["memfd"] = os.pread(mfd, 100, 0).decode()
    # The listening socket: the peer connected through its copy and wrote a
    # line, which a connection accepted here (ours is the same socket) may or
    # may not receive, depending on who accepted first: not checked here.
    for fd in (reg, dirfd, pr, pw, efd, mfd):
        os.close(fd)
    for s in (u1, u2, listener, client, accepted):
        s.close()
    os.unlink(os.path.join(tmpdir, "inside"))
    os.rmdir(tmpdir)


def shared(sock, result):
    f = tempfile.TemporaryFile()
    f.write(b"0123456789abcdef")
    f.flush()
    os.lseek(f.fileno(), 5, os.SEEK_SET)
    pr, pw = os.pipe()
    os.set_blocking(pr, False)
    socket.send_fds(sock, [b"shared"], [f.fileno(), pr])
    data, fds, _ = recv_msg(sock)
    result["step"] = data
    result["offset_after_peer_read"] = os.lseek(f.fileno(), 0, os.SEEK_CUR)
    os.set_blocking(pr, True)
    sock.sendall(b"cleared")
    data, fds, _ = recv_msg(sock)
    result["last"] = data
    f.close()
    os.close(pr)
    os.close(pw)


def main():
    mode = sys.argv[1]
    before = open_fds()
    sock = socket.socket(fileno=3)
    sock.settimeout(20)
    result = {"mode": mode}
    if mode == "kinds":
        kinds(sock, result)
    elif mode == "shared":
        shared(sock, result)
    else:
        raise SystemExit(f"unknown mode {mode}")
    finish(sock, result, before)


if __name__ == "__main__":
    main()
