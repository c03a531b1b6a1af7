"""A hostile peer for fdpass's framed stream.

Usage: hostile_peer.py MODE [fd3|PATH] [N]

The socket is fd 3 ("fd3", the default) or a connection to PATH. Modes:

  garbage       4 KiB of pseudo-random bytes, no fds
  garbage-fds   4 KiB of pseudo-random bytes with 3 fds attached
  more-fds      a header announcing 5 fds, 2 sent
  unannounced   a header announcing 0 fds, 2 sent
  late-fds      a header announcing 1 fd sent alone; 0.3 s later the fd rides
                on the payload's first byte, in another sendmsg
  split-fds     a header announcing 2 fds; 1 fd on the header, 1 on the payload
  huge          a header announcing a 4 GiB - 1 payload, then 64 KiB of it
  good-then-bad a valid frame with 1 fd, then a header with reserved bits set
  creds         a valid frame with 1 fd and an SCM_CREDENTIALS message, then a
                valid frame with SCM_CREDENTIALS only; waits for a reply
  flood         N frames of 253 fds each (the same file 253 times), until the
                peer stops reading them
  flood-raw     N unframed 1-byte messages of 253 fds each (for unframed
                stream, seqpacket and dgram readers)
  midframe-flood  a header announcing 65536 bytes and 0 fds, then up to N
                1-byte chunks of its payload, each carrying 253 fds
  pidfd         makes a seqpacket pair, turns on SO_PASSCRED and SO_PASSPIDFD
                on one end and sends that end over fd 3 (1 byte, unframed);
                then on the other end: 253 fds with SCM_CREDENTIALS, then
                SCM_CREDENTIALS alone, then 1 fd; waits for a reply
  mirror        receives one unframed message with fds on fd 3 (a seqpacket
                socket) and sends back those fds and its own socket; waits
                for the peer to close

After sending, every mode but "creds" waits (10 s at most) for the peer to
close the connection. Prints one JSON line: what it sent, how the connection
ended, and its own fd audit.
"""
import json
import os
import random
import socket
import struct
import sys
import tempfile
import time

from fdaudit import open_fds


def header(length, nfds, reserved=0):
    return struct.pack("<IHH", length, nfds, reserved)


def rights(fds):
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))]


def creds():
    return [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("iII", os.getpid(), os.getuid(), os.getgid()))]


def wait_for_close(sock, result):
    """Reads until the peer closes; records how it ended."""
    sock.settimeout(10)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                result["end"] = "eof"
                return
    except socket.timeout:
        result["end"] = "timeout"
    except OSError as e:
        result["end"] = type(e).__name__


def main():
    mode = sys.argv[1]
    where = sys.argv[2] if len(sys.argv) > 2 else "fd3"
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    before = open_fds()
    if where == "fd3":
        sock = socket.socket(fileno=3)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(where)
    sock.settimeout(20)
    result = {"mode": mode}
    f = tempfile.TemporaryFile()
    f.write(b"hostile file")
    f.flush()
    fd = f.fileno()
    rng = random.Random(5)
    try:
        if mode == "garbage":
            sock.sendall(bytes(rng.randrange(256) for _ in range(4096)))
        elif mode == "garbage-fds":
            sock.sendmsg([bytes(rng.randrange(256) for _ in range(4096))], rights([fd, fd, fd]))
        elif mode == "more-fds":
            sock.sendmsg([header(1, 5) + b"x"], rights([fd, fd]))
        elif mode == "unannounced":
            sock.sendmsg([header(1, 0) + b"x"], rights([fd, fd]))
        elif mode == "late-fds":
            sock.sendall(header(4, 1))
            # Let the reader take the header alone: queued together, the
            # kernel glues the fd-less header in front of the payload that
            # carries the fd, and the frame reads as a valid one.
            time.sleep(0.3)
            sock.sendmsg([b"abcd"], rights([fd]))
        elif mode == "split-fds":
            sock.sendmsg([header(4, 2)], rights([fd]))
            sock.sendmsg([b"abcd"], rights([fd]))
        elif mode == "huge":
            sock.sendall(header(0xFFFFFFFF, 0))
            sock.sendall(b"h" * 65536)
        elif mode == "good-then-bad":
            sock.sendmsg([header(4, 1) + b"good"], rights([fd]))
            sock.sendall(header(1, 0, reserved=0x100) + b"x")
        elif mode == "creds":
            sock.sendmsg([header(10, 1) + b"with-creds"], creds() + rights([fd]))
            sock.sendmsg([header(10, 0) + b"creds-only"], creds())
            # The peer replies when it has both (an unframed byte is enough).
            result["reply"] = len(sock.recv(100))
        elif mode in ("flood", "flood-raw", "midframe-flood"):
            msg = [header(1, 253) + b"x"] if mode == "flood" else [b"x"]
            anc = rights([fd] * 253)
            if mode == "midframe-flood":
                sock.sendall(header(65536, 0))
            sent = 0
            try:
                for _ in range(count):
                    sock.sendmsg(msg, anc)
                    sent += 1
            except OSError as e:
                result["send_error"] = type(e).__name__
            result["sent"] = sent
            try:
                # End of stream: a reader that kept up sees the flood end.
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        elif mode == "pidfd":
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            so_passpidfd = 76  # not named by Python 3.11
            a.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            a.setsockopt(socket.SOL_SOCKET, so_passpidfd, 1)
            sock.sendmsg([b"s"], rights([a.fileno()]))
            a.close()
            b.sendmsg([b"many"], creds() + rights([fd] * 253))
            b.sendmsg([b"creds-only"], creds())
            b.sendmsg([b"one"], rights([fd]))
            b.settimeout(20)
            result["reply"] = len(b.recv(100))
            b.close()
        elif mode == "mirror":
            _, fds, _, _ = socket.recv_fds(sock, 100, 253)
            sock.sendmsg([b"back"], rights(fds + [sock.fileno()]))
            for x in fds:
                os.close(x)
            result["mirrored"] = len(fds)
        else:
            raise SystemExit(f"unknown mode {mode}")
        # A datagram peer sees no end of the connection: nothing to wait for.
        # "mirror" gave the peer its own end: no end of stream would come.
        if mode not in ("creds", "pidfd", "mirror") and sock.type != socket.SOCK_DGRAM:
            wait_for_close(sock, result)
    except OSError as e:
        result["error"] = type(e).__name__
    f.close()
    if where == "fd3":
        sock.detach()
        os.close(3)
    else:
        sock.close()
    after = open_fds()
    result["fd_audit_ok"] = after == [x for x in before if x != 3 or where != "fd3"]
    result["fds_before"] = before
    result["fds_after"] = after
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
