"""A blocking peer in Python (plain socket.recvmsg/sendmsg): see README.md."""
import array
import fcntl
import json
import os
import socket
import struct
import sys
import tempfile

# The fd audit the Python peers share (__test__/peers/fdaudit.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fdaudit import open_fds  # noqa: E402

SOCK = 3
nonblock_seen = False


def check_mode():
    global nonblock_seen
    if fcntl.fcntl(SOCK, fcntl.F_GETFL) & os.O_NONBLOCK:
        nonblock_seen = True




def recv_some(sock, n, fds):
    data, ancdata, flags, _ = sock.recvmsg(n, socket.CMSG_SPACE(253 * 4), socket.MSG_CMSG_CLOEXEC)
    if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
        raise SystemExit("python peer: truncated message")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
            fds.extend(got)
    return data


def recv_exactly(sock, n, fds):
    out = b""
    while len(out) < n:
        chunk = recv_some(sock, n - len(out), fds)
        if not chunk:
            raise SystemExit("python peer: end of stream in a message")
        out += chunk
    return out


def recv_message(sock, framed):
    fds = []
    if not framed:
        return recv_some(sock, 65536, fds), fds
    length, count, reserved = struct.unpack("<IHH", recv_exactly(sock, 8, fds))
    if reserved or count != len(fds):
        raise SystemExit("python peer: bad header")
    data = recv_exactly(sock, length, fds)
    if count != len(fds):
        raise SystemExit("python peer: fds outside a header")
    return data, fds


def send_message(sock, framed, data, fds):
    parts = [struct.pack("<IHH", len(data), len(fds), 0), data] if framed else [data]
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sent = sock.sendmsg(parts, anc)
    if sent != sum(map(len, parts)):
        raise SystemExit("python peer: short sendmsg")


def main():
    framed = sys.argv[1] == "framed"
    rounds = int(sys.argv[2])
    before = open_fds()
    sock = socket.socket(fileno=SOCK)
    got = []
    for r in range(rounds):
        check_mode()
        data, fds = recv_message(sock, framed)
        check_mode()
        got.append(data.decode())
        contents = [os.pread(fd, 127, 0).decode() for fd in fds]
        own = tempfile.TemporaryFile()
        own.write(f"python-{r}".encode())
        own.flush()
        send_message(sock, framed, ("ack:python:" + ",".join(contents)).encode(), fds + [own.fileno()])
        own.close()
        for fd in fds:
            os.close(fd)
    check_mode()
    sock.detach()
    after = open_fds()
    print(json.dumps({"lang": "python", "got": got, "nonblock_seen": nonblock_seen, "fd_audit_ok": after == before}), flush=True)
    os.close(SOCK)


main()
