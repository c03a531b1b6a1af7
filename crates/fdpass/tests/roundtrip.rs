//! Round trips through the core, each with an audit of this process's fds.

mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use common::audited;
use fdpass::{recv_fds, send_fds, socket_pair, Error, SocketType, MAX_FDS_PER_MESSAGE};
use nix::errno::Errno;

fn temp_file(contents: &str) -> File {
    let mut f = tempfile();
    f.write_all(contents.as_bytes()).expect("write");
    f.seek(SeekFrom::Start(0)).expect("seek");
    f
}

fn tempfile() -> File {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "fdpass-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("open");
    std::fs::remove_file(&path).expect("unlink");
    f
}

fn read_all(fd: OwnedFd) -> String {
    let mut f = File::from(fd);
    f.seek(SeekFrom::Start(0)).expect("seek");
    let mut s = String::new();
    f.read_to_string(&mut s).expect("read");
    s
}

/// Every socket type this platform has (macOS has no `SOCK_SEQPACKET` for `AF_UNIX`).
#[cfg(target_os = "linux")]
const TYPES: &[SocketType] = &[SocketType::Stream, SocketType::SeqPacket, SocketType::Datagram];
#[cfg(not(target_os = "linux"))]
const TYPES: &[SocketType] = &[SocketType::Stream, SocketType::Datagram];

#[test]
fn round_trips_1_2_and_253_fds_on_every_type() {
    audited(|| {
        for &kind in TYPES {
            for count in [1usize, 2, MAX_FDS_PER_MESSAGE] {
                let (a, b) = socket_pair(kind).expect("socketpair");
                let files: Vec<File> = (0..count).map(|i| temp_file(&format!("file {i}"))).collect();
                let raw: Vec<RawFd> = files.iter().map(AsRawFd::as_raw_fd).collect();
                assert_eq!(send_fds(a.as_fd(), b"hello", &raw).expect("send"), 5);
                let mut buf = [0u8; 64];
                let got = recv_fds(b.as_fd(), &mut buf, MAX_FDS_PER_MESSAGE).expect("recv");
                assert_eq!(&buf[..got.len], b"hello");
                assert_eq!(got.fds.len(), count, "{kind:?} with {count} fds");
                for (i, fd) in got.fds.into_iter().enumerate() {
                    assert!(
                        fdpass::is_cloexec(fd.as_fd()).expect("F_GETFD"),
                        "received fds are close-on-exec"
                    );
                    assert_eq!(read_all(fd), format!("file {i}"));
                }
            }
        }
    });
}

#[test]
fn more_fds_than_max_are_all_closed_and_reported() {
    audited(|| {
        for &kind in TYPES {
            let (a, b) = socket_pair(kind).expect("socketpair");
            let files: Vec<File> = (0..3).map(|_| temp_file("x")).collect();
            let raw: Vec<RawFd> = files.iter().map(AsRawFd::as_raw_fd).collect();
            for max in [0, 1, 2] {
                send_fds(a.as_fd(), b"m", &raw).expect("send");
                let mut buf = [0u8; 8];
                let err = recv_fds(b.as_fd(), &mut buf, max).expect_err("too many");
                assert_eq!(
                    err,
                    Error::FdsTruncated {
                        received: 3,
                        max_fds: max,
                        kernel_truncated: false
                    }
                );
                assert_eq!(err.code(), "ERR_FDS_TRUNCATED");
            }
        }
    });
}

#[test]
fn refuses_254_fds_and_empty_data_before_any_syscall() {
    audited(|| {
        let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
        let f = temp_file("x");
        let raw = vec![f.as_raw_fd(); MAX_FDS_PER_MESSAGE + 1];
        assert_eq!(
            send_fds(a.as_fd(), b"x", &raw),
            Err(Error::TooManyFds { count: 254 })
        );
        assert_eq!(send_fds(a.as_fd(), b"", &[f.as_raw_fd()]), Err(Error::EmptyData));
        // Nothing reached the peer.
        fdpass::set_nonblocking(b.as_fd(), true).expect("nonblock");
        let mut buf = [0u8; 8];
        assert!(recv_fds(b.as_fd(), &mut buf, 1).expect_err("empty").would_block());
    });
}

#[test]
fn refuses_a_tcp_socket() {
    audited(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (_server_side, _) = listener.accept().expect("accept");
        let f = temp_file("x");
        let err = send_fds(client.as_fd(), b"x", &[f.as_raw_fd()]).expect_err("tcp");
        assert!(matches!(err, Error::NotUnixSocket { family } if family == libc::AF_INET));
        assert_eq!(err.code(), "ERR_NOT_UNIX_SOCKET");
    });
}

#[test]
fn closed_peer_is_epipe_without_sigpipe() {
    audited(|| {
        // Restore the default action, which kills the process: the Rust runtime
        // ignores SIGPIPE, which would hide a missing MSG_NOSIGNAL.
        // SAFETY: installs the default disposition; no handler code runs.
        let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        // The connected types: a datagram pair has no peer to lose.
        for &kind in TYPES.iter().filter(|&&k| k != SocketType::Datagram) {
            let (a, b) = socket_pair(kind).expect("socketpair");
            drop(b);
            let f = temp_file("x");
            let err = send_fds(a.as_fd(), b"x", &[f.as_raw_fd()]).expect_err("closed");
            assert_eq!(err, Error::os(Errno::EPIPE, "sendmsg"));
            assert_eq!(err.to_string(), "sendmsg EPIPE (the peer closed the socket)");
            assert_eq!(err.errno(), Some(libc::EPIPE));
        }
        // SAFETY: puts back the disposition found above.
        unsafe { libc::signal(libc::SIGPIPE, previous) };
    });
}

#[test]
fn truncated_datagram_closes_its_fds() {
    audited(|| {
        for &kind in TYPES.iter().filter(|k| k.keeps_boundaries()) {
            let (a, b) = socket_pair(kind).expect("socketpair");
            let f = temp_file("x");
            send_fds(a.as_fd(), b"ten bytes!", &[f.as_raw_fd()]).expect("send");
            let mut small = [0u8; 3];
            assert_eq!(
                recv_fds(b.as_fd(), &mut small, 10).expect_err("truncated"),
                Error::MessageTruncated { max_bytes: 3 }
            );
        }
    });
}

#[test]
fn end_of_stream_is_empty() {
    audited(|| {
        let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
        drop(a);
        let mut buf = [0u8; 8];
        let got = recv_fds(b.as_fd(), &mut buf, 10).expect("eof");
        assert_eq!(got.len, 0);
        assert!(got.fds.is_empty());
    });
}

#[test]
fn bad_fds_are_ebadf() {
    audited(|| {
        let (a, _b) = socket_pair(SocketType::Stream).expect("socketpair");
        let closed = temp_file("x").as_raw_fd();
        assert_eq!(
            send_fds(a.as_fd(), b"x", &[closed]),
            Err(Error::os(Errno::EBADF, "sendmsg"))
        );
        assert_eq!(
            send_fds(a.as_fd(), b"x", &[-1]),
            Err(Error::os(Errno::EBADF, "sendmsg"))
        );
    });
}
