//! Pulled reads (`Connection::read_into`) over real stream socketpairs:
//! partial reads, a read that fills the buffer exactly, the end of the
//! stream (also right after a read with fds), EAGAIN, fds in order across
//! read boundaries, the fd limit, and the readiness event that replaces the
//! connection's own reads.
//!
//! Fd leaks are checked as in conn.rs: an fd passed is the read end of a
//! pipe whose other copies are closed, so the pipe's write end gets EPIPE
//! exactly when no copy of the read end is left anywhere.

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use common::{has_reader, pipe};
use fdpass::conn::{Config, Connection, Event, PullRead};
use fdpass::{send_fds, socket_pair, Error, SocketType, MAX_FDS_PER_MESSAGE};

fn config(max_fds: usize) -> Config {
    Config {
        kind: SocketType::Stream,
        listening: false,
        framing: false,
        max_bytes: 64 * 1024,
        max_fds,
    }
}

/// A pulling connection and the peer's plain socket.
fn pulling(max_fds: usize) -> (Connection, OwnedFd) {
    let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
    let mut conn = Connection::new(a, config(max_fds)).expect("connection");
    assert!(conn.set_pull_reads(true));
    (conn, b)
}

fn read(conn: &mut Connection, len: usize) -> (PullRead, Vec<u8>, Vec<OwnedFd>) {
    let mut buf = vec![0; len];
    let mut fds = Vec::new();
    let r = conn.read_into(&mut buf, &mut fds).expect("read_into");
    let n = if let PullRead::Read(n) = r { n } else { 0 };
    buf.truncate(n);
    (r, buf, fds)
}

#[test]
fn partial_reads_then_eagain_then_the_end() {
    let (mut conn, peer) = pulling(MAX_FDS_PER_MESSAGE);
    assert_eq!(read(&mut conn, 16).0, PullRead::WouldBlock);
    send_fds(peer.as_fd(), &[7; 100], &[]).expect("send");
    let (r, bytes, _) = read(&mut conn, 40);
    assert_eq!((r, bytes), (PullRead::Read(40), vec![7; 40]));
    assert_eq!(read(&mut conn, 40).0, PullRead::Read(40));
    // Exactly the rest: the buffer filled to the last byte.
    assert_eq!(read(&mut conn, 20).0, PullRead::Read(20));
    assert_eq!(read(&mut conn, 20).0, PullRead::WouldBlock);
    drop(peer);
    assert_eq!(read(&mut conn, 20).0, PullRead::End);
    // The end stays the end, and the watcher has nothing more to wait for.
    assert_eq!(read(&mut conn, 20).0, PullRead::End);
    conn.set_reading(1, 1);
    assert!(!conn.interest().readable);
    assert!(conn.read(1, 1).is_empty());
}

#[test]
fn fds_come_in_order_with_the_byte_they_were_sent_with() {
    let (mut conn, peer) = pulling(MAX_FDS_PER_MESSAGE);
    let (r1, mut w1) = pipe();
    let (r2, mut w2) = pipe();
    send_fds(peer.as_fd(), b"AA", &[r1.as_raw_fd()]).expect("send");
    send_fds(peer.as_fd(), b"BBBB", &[r2.as_raw_fd()]).expect("send");
    let ino = |fd: &OwnedFd| nix::sys::stat::fstat(fd).expect("fstat").st_ino;
    let (ino1, ino2) = (ino(&r1), ino(&r2));
    drop((r1, r2));
    // A read of 1 byte takes the first skb's fds; the rest of it comes without.
    let (r, bytes, fds) = read(&mut conn, 1);
    assert_eq!(
        (r, bytes.as_slice(), fds.len()),
        (PullRead::Read(1), &b"A"[..], 1)
    );
    assert_eq!(ino(&fds[0]), ino1);
    assert!(fdpass::is_cloexec(fds[0].as_fd()).expect("cloexec"));
    // The rest: the second fd comes no later than the first byte it was
    // sent with (Linux joins the rest of the first skb and the second).
    let (mut rest, mut second) = (Vec::new(), Vec::new());
    while rest.len() < 5 {
        let (r, bytes, more) = read(&mut conn, 64);
        assert!(matches!(r, PullRead::Read(_)), "{r:?}");
        if bytes.contains(&b'B') {
            assert!(second.len() + more.len() == 1, "the fd came after its byte");
        }
        rest.extend(bytes);
        second.extend(more);
    }
    assert_eq!(rest, b"ABBBB");
    assert_eq!(ino(&second[0]), ino2);
    drop((fds, second));
    assert!(
        !has_reader(&mut w1) && !has_reader(&mut w2),
        "a passed fd is still open"
    );
}

#[test]
fn the_end_right_after_a_read_with_fds() {
    let (mut conn, peer) = pulling(MAX_FDS_PER_MESSAGE);
    let (r, mut w) = pipe();
    send_fds(peer.as_fd(), b"last", &[r.as_raw_fd()]).expect("send");
    drop((r, peer));
    let (got, bytes, fds) = read(&mut conn, 4);
    assert_eq!(
        (got, bytes.as_slice(), fds.len()),
        (PullRead::Read(4), &b"last"[..], 1)
    );
    assert_eq!(read(&mut conn, 4).0, PullRead::End);
    drop(fds);
    assert!(!has_reader(&mut w));
}

#[test]
fn more_fds_than_allowed_fail_the_read_and_are_closed() {
    let (mut conn, peer) = pulling(2);
    let pipes: Vec<_> = (0..3).map(|_| pipe()).collect();
    let raw: Vec<RawFd> = pipes.iter().map(|(r, _)| r.as_raw_fd()).collect();
    send_fds(peer.as_fd(), b"x", &raw).expect("send");
    let mut writers: Vec<_> = pipes.into_iter().map(|(_, w)| w).collect();
    let mut fds = Vec::new();
    let err = conn
        .read_into(&mut [0; 8], &mut fds)
        .expect_err("3 fds over a limit of 2");
    assert!(matches!(err, Error::FdsTruncated { .. }), "{err:?}");
    assert!(fds.is_empty());
    assert!(
        writers.iter_mut().all(|w| !has_reader(w)),
        "a refused fd is still open"
    );
}

#[test]
fn readiness_reports_readable_and_reads_nothing() {
    let (mut conn, peer) = pulling(MAX_FDS_PER_MESSAGE);
    send_fds(peer.as_fd(), b"hello", &[]).expect("send");
    conn.set_reading(4, 1);
    assert!(conn.interest().readable);
    let events = conn.read(4, 1);
    assert!(matches!(events.as_slice(), [Event::Readable]), "{events:?}");
    assert_eq!(events[0].code(), fdpass::wire_constants::EV_READABLE);
    // The reader's room is its own to change; the bytes are still there.
    assert_eq!(conn.reading(), (4, 1));
    assert_eq!(read(&mut conn, 64).1, b"hello");
}

#[test]
fn only_unframed_streams_pull_and_a_closed_one_fails() {
    for (kind, framing) in [(SocketType::Stream, true), (SocketType::Datagram, false)] {
        let (a, _b) = socket_pair(kind).expect("socketpair");
        let mut conn = Connection::new(
            a,
            Config {
                kind,
                framing,
                ..config(1)
            },
        )
        .expect("connection");
        assert!(!conn.set_pull_reads(true));
        assert!(!conn.pulls_reads());
    }
    let (mut conn, _peer) = pulling(1);
    drop(conn.close());
    assert!(conn.read_into(&mut [0; 4], &mut Vec::new()).is_err());
    assert!(conn.read(1, 1).is_empty());
}

#[test]
fn the_watchers_readiness_becomes_readable_and_its_error_waits_for_the_pull() {
    let (mut conn, peer) = pulling(MAX_FDS_PER_MESSAGE);
    conn.set_reading(4, 1);
    let readable = fdpass::conn::Interest {
        readable: true,
        writable: false,
    };
    let hangup = || Some(Error::os(nix::errno::Errno::EPIPE, "uv_poll"));
    // Input, or a hangup the watcher reports as an error: the reader pulls,
    // and its read tells what happened.
    assert!(matches!(
        conn.on_ready(readable, None).as_slice(),
        [Event::Readable]
    ));
    drop(peer);
    assert!(matches!(
        conn.on_ready(readable, hangup()).as_slice(),
        [Event::Readable]
    ));
    assert_eq!(read(&mut conn, 8).0, PullRead::End);
    // Past the end nothing is pulled: the watcher's own error is all there is.
    assert!(matches!(
        conn.on_ready(readable, hangup()).as_slice(),
        [Event::Error(_)]
    ));
}
