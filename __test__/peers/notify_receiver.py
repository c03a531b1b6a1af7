"""A stand-in for the service manager's end of $NOTIFY_SOCKET: binds an
AF_UNIX datagram socket (a path, or an '@' abstract name) with SO_PASSCRED as
systemd does, prints {"ready": true}, then reports each of `count` datagrams
exactly as received: the bytes, the credentials the kernel attached, and what
each passed fd is (then closes it). Ends with its own fd audit.

usage: notify_receiver.py ADDRESS COUNT"""

import array
import json
import os
import socket
import stat
import struct
import sys

from fdaudit import open_fds

SCM_CREDENTIALS = 2
SO_PASSCRED = 16
UCRED = struct.Struct("iII")


def describe_fd(fd):
    st = os.fstat(fd)
    flags = int(open(f"/proc/self/fdinfo/{fd}").read().split("flags:")[1].split()[0], 8)
    info = {"cloexec": bool(flags & os.O_CLOEXEC)}
    if stat.S_ISSOCK(st.st_mode):
        s = socket.socket(fileno=os.dup(fd))
        info.update(kind="socket", listening=bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
                    address=list(s.getsockname()) if s.family != socket.AF_UNIX else s.getsockname())
        s.close()
    elif stat.S_ISREG(st.st_mode):
        info.update(kind="file", link=os.readlink(f"/proc/self/fd/{fd}"), content=os.pread(fd, 256, 0).decode("latin1"))
    else:
        info.update(kind="other")
    return info


def main():
    address, count = sys.argv[1], int(sys.argv[2])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_PASSCRED, 1)
    sock.bind("\0" + address[1:] if address.startswith("@") else address)
    before = open_fds()
    print(json.dumps({"ready": True}), flush=True)
    datagrams = []
    for _ in range(count):
        data, ancdata, flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(253 * 4) + socket.CMSG_SPACE(UCRED.size))
        entry = {"data": data.decode("latin1"), "truncated": bool(flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC)),
                 "credentials": None, "fds": []}
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                for fd in fds:
                    entry["fds"].append(describe_fd(fd))
                    os.close(fd)
            elif level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS:
                pid, uid, gid = UCRED.unpack(payload[: UCRED.size])
                entry["credentials"] = {"pid": pid, "uid": uid, "gid": gid}
        datagrams.append(entry)
    after = open_fds()
    sock.close()
    if not address.startswith("@"):
        os.unlink(address)
    print(json.dumps({"datagrams": datagrams, "fd_audit_ok": after == before}), flush=True)


main()
