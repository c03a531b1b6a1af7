"""Python 3 socket.send_fds / socket.recv_fds (3.9+): the same protocol and
JSON output as the C reference (bench/c/fdbench.c).

Usage: python3 python.py <workload> <variant> <seconds> <reps> [warm-up seconds]
"""
import json
import os
import socket
import struct
import sys
import time

if not hasattr(socket, "send_fds"):
    print(json.dumps({"skip": "this Python has no socket.send_fds (3.9+)"}))
    sys.exit(0)


def open_fd_count():
    return len(os.listdir("/proc/self/fd")) - 1


def same_file(fd, ref):
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return st.st_ino == ref.st_ino and st.st_dev == ref.st_dev


WARMUP = float(sys.argv[5]) if len(sys.argv) > 5 else 0.3


def calibrate(batch, seconds):
    """Warm-up and calibration, as in bench/runners/common.js."""
    if os.environ.get("FDPASS_BENCH_N"):
        return int(os.environ["FDPASS_BENCH_N"])
    start = time.perf_counter()

    def measure(n):
        t0 = time.perf_counter()
        batch(n)
        return time.perf_counter() - t0

    n = 20
    while True:
        took = measure(n)
        if took <= 0.02 and n < 5e7:
            n *= 4
        elif time.perf_counter() - start >= WARMUP:
            break
    # Measured after the warm-up, not by the first (cold) batch.
    return max(10, round(n * seconds / measure(n)))


def timed(batch, n):
    t0 = time.perf_counter()
    batch(n)
    return n / (time.perf_counter() - t0)


def child(workload, sock):
    pingpong = workload == "w3"
    ref = os.stat("/dev/null")
    base = open_fd_count()
    good = 0
    while True:
        data, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
        if not data:
            sys.exit(2)
        if data == b"Q":
            break
        if data == b"E":
            sock.sendall(struct.pack("<q", good))
            good = 0
            continue
        ok = len(fds) == 1 and (good > 0 or same_file(fds[0], ref))
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                ok = False
        good += ok
        if pingpong:
            sock.send(b"y" if ok else b"n")
    sys.exit(0 if open_fd_count() == base else 3)


def read_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def main():
    workload, variant, seconds, reps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    base = open_fd_count()
    file = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    ref = os.fstat(file)
    bad = 0
    out = {"ops": []}
    if workload in ("w1", "w2"):
        nfds = 1 if workload == "w1" else int(variant)
        kind = {"stream": socket.SOCK_STREAM, "seqpacket": socket.SOCK_SEQPACKET, "dgram": socket.SOCK_DGRAM}
        s, r = socket.socketpair(socket.AF_UNIX, kind[variant] if workload == "w1" else socket.SOCK_STREAM)
        sent = [file] * nfds

        def batch(n):
            nonlocal bad
            for i in range(n):
                socket.send_fds(s, [b"f"], sent)
                _data, fds, _flags, _addr = socket.recv_fds(r, 1, 253)
                if len(fds) != nfds:
                    bad += nfds - len(fds)
                if i == 0 and not same_file(fds[0], ref):
                    bad += 1
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        bad += 1

        n = calibrate(batch, seconds)
        bad = 0
        for _ in range(reps):
            out["ops"].append(timed(batch, n))
        s.close()
        r.close()
        out.update(unit="round trips/s" if workload == "w1" else "messages/s", perRep=n, fdsExpected=n * nfds * reps)
    elif workload in ("w3", "w4"):
        pingpong = workload == "w3"
        s, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            s.close()
            os.close(file)
            code = 2
            try:
                child(workload, theirs)
            except SystemExit as exit_:
                code = exit_.code
            finally:
                os._exit(code)
        theirs.close()
        one = [file]
        lat = None

        def end_rep(n):
            nonlocal bad
            s.send(b"E")
            (good,) = struct.unpack("<q", read_exactly(s, 8))
            bad += n - good

        def batch_w3(n):
            nonlocal bad
            clock = time.perf_counter
            for i in range(n):
                t0 = clock() if lat is not None else 0
                socket.send_fds(s, [b"f"], one)
                y = s.recv(1)
                if lat is not None:
                    lat[i] = (clock() - t0) * 1e6
                if y != b"y":
                    bad += 1

        def batch_w4(n):
            for _ in range(n):
                socket.send_fds(s, [b"f"], one)
            end_rep(n)

        batch = batch_w3 if pingpong else batch_w4
        n = calibrate(batch, seconds)
        if pingpong:
            end_rep(0)
        bad = 0
        p50, p99 = [], []
        for _ in range(reps):
            lat = [0.0] * n if pingpong else None
            out["ops"].append(timed(batch, n))
            if pingpong:
                end_rep(n)
                lat.sort()
                p50.append(lat[n // 2])
                p99.append(lat[min(n - 1, int(n * 0.99))])
        if pingpong:
            out.update(p50us=p50, p99us=p99)
        s.send(b"Q")
        _, status = os.waitpid(pid, 0)
        out["childExit"] = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
        s.close()
        out.update(unit="round trips/s" if pingpong else "fds/s", perRep=n, fdsExpected=n * reps)
    else:
        print(json.dumps({"skip": "unknown workload " + workload}))
        return
    os.close(file)
    out["fdsBad"] = bad
    out["leakedFds"] = open_fd_count() - base
    print(json.dumps(out))


if __name__ == "__main__":
    main()
