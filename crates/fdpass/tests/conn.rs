//! The connection state machine (`fdpass::conn`) over real socketpairs:
//! partial writes and the queue, EAGAIN, batches and their limits,
//! truncation, seqpacket's ECONNRESET, EMFILE on accept, framing errors, and
//! that every fd in flight is closed when it should be.
//!
//! Fd leaks are checked without counting /proc/self/fd (the tests of this
//! file run in parallel threads of one process): an fd passed is the read
//! end of a pipe whose other copies are closed, so the pipe's write end
//! gets EPIPE exactly when no copy of the read end is left anywhere.

mod common;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use common::{has_reader, pipe};
use fdpass::conn::{Config, Connection, Event, Interest};
use fdpass::{socket_pair, Error, SocketType, MAX_FDS_PER_MESSAGE};

/// The socket types that keep message boundaries on this platform: macOS has
/// no `SOCK_SEQPACKET` for `AF_UNIX`.
#[cfg(target_os = "linux")]
const RECORD_KINDS: &[SocketType] = &[SocketType::SeqPacket, SocketType::Datagram];
#[cfg(not(target_os = "linux"))]
const RECORD_KINDS: &[SocketType] = &[SocketType::Datagram];

/// Connected sockets whose sends can fill up and wait (a full datagram
/// socket fails with ENOBUFS on macOS instead): a framed stream, and
/// seqpacket where it exists.
#[cfg(target_os = "linux")]
const QUEUEING: &[(SocketType, bool)] = &[(SocketType::Stream, true), (SocketType::SeqPacket, false)];
#[cfg(not(target_os = "linux"))]
const QUEUEING: &[(SocketType, bool)] = &[(SocketType::Stream, true)];

fn config(kind: SocketType, framing: bool) -> Config {
    Config {
        kind,
        listening: false,
        framing,
        max_bytes: 1 << 20,
        max_fds: MAX_FDS_PER_MESSAGE,
    }
}

fn pair(kind: SocketType, framing: bool) -> (Connection, Connection) {
    let (a, b) = socket_pair(kind).expect("socketpair");
    (
        Connection::new(a, config(kind, framing)).expect("a"),
        Connection::new(b, config(kind, framing)).expect("b"),
    )
}

/// One received message: its payload and fds.
type Message = (Vec<u8>, Vec<OwnedFd>);

/// The messages of `events`, and the other events.
fn messages(events: Vec<Event>) -> (Vec<Message>, Vec<Event>) {
    let mut out = Vec::new();
    let mut rest = Vec::new();
    for event in events {
        match event {
            Event::Messages(batch) => {
                let mut fds = batch.fds.into_iter();
                let (mut at, mut data_at) = (1, 0);
                for _ in 0..batch.meta[0] {
                    let (len, nfds) = (batch.meta[at] as usize, batch.meta[at + 1] as usize);
                    let taken: Vec<OwnedFd> = fds.by_ref().take(nfds).collect();
                    for (fd, &raw) in taken.iter().zip(&batch.meta[at + 2..]) {
                        assert_eq!(fd.as_raw_fd(), raw, "meta lists the batch's fds");
                    }
                    out.push((batch.data[data_at..data_at + len].to_vec(), taken));
                    at += 2 + nfds;
                    data_at += len;
                }
            }
            other => rest.push(other),
        }
    }
    (out, rest)
}

fn raw(fds: &[&OwnedFd]) -> Vec<RawFd> {
    fds.iter().map(|fd| fd.as_raw_fd()).collect()
}

#[test]
fn a_send_the_kernel_cannot_take_waits_in_the_queue_with_its_fds_duplicated() {
    for &(kind, framing) in QUEUEING {
        let (mut a, mut b) = pair(kind, framing);
        // Fill the socket buffer with fd-less messages until the kernel pushes back.
        let filler = vec![1u8; 16 * 1024];
        let mut sent = 0;
        while a.send(&filler, &[]).expect("send") {
            sent += 1;
            assert!(sent < 10_000, "the socket buffer never filled");
        }
        // That send was partial (stream) or refused whole (EAGAIN, seqpacket):
        // the rest waits; so does the next one, behind it, with its fd.
        assert!(a.queued_bytes() > 0);
        let (r, mut w) = pipe();
        assert!(!a.send(b"with fd", &raw(&[&r])).expect("queued"));
        drop(r); // the queue holds its own duplicate
        assert!(has_reader(&mut w), "the queued send holds a duplicate of the fd");
        assert_eq!(
            a.interest(),
            Interest {
                readable: false,
                writable: true
            }
        );

        // Drain b while flushing a, until the fd message arrives.
        b.set_reading(usize::MAX, usize::MAX);
        let mut received = Vec::new();
        let mut written = 0;
        for _ in 0..10_000 {
            for event in a.flush() {
                match event {
                    Event::Written(n) => written += n,
                    other => panic!("unexpected {other:?}"),
                }
            }
            let (msgs, rest) = messages(b.read(64, 253));
            assert!(rest.is_empty(), "{rest:?}");
            received.extend(msgs);
            if received.last().is_some_and(|(d, _)| d == b"with fd") {
                break;
            }
        }
        assert_eq!(received.len(), sent + 2, "every message arrives, once, in order");
        assert!(received[..sent + 1]
            .iter()
            .all(|(d, f)| d == &filler && f.is_empty()));
        assert_eq!(
            written, 2,
            "the partial/refused send and the fd send completed from the queue"
        );
        assert_eq!(a.queued_bytes(), 0);
        assert!(!a.interest().writable);
        let (_, fds) = received.pop().expect("fd message");
        assert_eq!(fds.len(), 1);
        drop(fds);
        assert!(
            !has_reader(&mut w),
            "no copy of the fd is left once the receiver closes its own"
        );
    }
}

#[test]
fn nothing_queued_reads_as_no_events_not_an_error() {
    for &kind in [SocketType::Stream].iter().chain(RECORD_KINDS) {
        let (_a, mut b) = pair(kind, kind == SocketType::Stream);
        assert!(b.read(16, 253).is_empty(), "{kind:?}: EAGAIN is no event");
    }
}

#[test]
fn a_read_stops_at_the_message_and_fd_room_it_was_given() {
    let record = RECORD_KINDS.iter().map(|&k| (k, false));
    for (kind, framing) in std::iter::once((SocketType::Stream, true)).chain(record) {
        let (mut a, mut b) = pair(kind, framing);
        let (r, mut w) = pipe();
        for i in 0..10u8 {
            assert!(a.send(&[i], &raw(&[&r])).expect("send"));
        }
        drop(r);
        let (first, rest) = messages(b.read(4, 253));
        assert!(rest.is_empty());
        assert_eq!(
            first.iter().map(|(d, _)| d[0]).collect::<Vec<_>>(),
            [0, 1, 2, 3],
            "{kind:?}: 4 asked for"
        );
        let (second, _) = messages(b.read(100, 3));
        assert_eq!(
            second.len(),
            3,
            "{kind:?}: the read stops at the message that brings 3 fds"
        );
        let (third, _) = messages(b.read(100, 253));
        assert_eq!(third.iter().map(|(d, _)| d[0]).collect::<Vec<_>>(), [7, 8, 9]);
        drop((first, second));
        assert!(has_reader(&mut w));
        drop(third);
        assert!(
            !has_reader(&mut w),
            "{kind:?}: every received fd is owned by its message"
        );
    }
}

#[test]
fn a_datagram_longer_than_max_bytes_fails_and_its_fds_are_closed() {
    for &kind in RECORD_KINDS {
        let (x, y) = socket_pair(kind).expect("socketpair");
        let mut a = Connection::new(x, config(kind, false)).expect("a");
        let small = Config {
            max_bytes: 4,
            ..config(kind, false)
        };
        let mut b = Connection::new(y, small).expect("b");
        let (r, mut w) = pipe();
        assert!(a.send(b"too long", &raw(&[&r])).expect("send"));
        drop(r);
        let events = b.read(16, 253);
        assert!(
            matches!(
                &events[..],
                [Event::Error(Error::MessageTruncated { max_bytes: 4 })]
            ),
            "{kind:?}: {events:?}"
        );
        assert!(
            !has_reader(&mut w),
            "{kind:?}: the truncated message's fd was closed"
        );
    }
}

#[test]
fn more_fds_than_max_fds_fails_and_every_fd_is_closed() {
    let kind = RECORD_KINDS[0];
    let (x, y) = socket_pair(kind).expect("socketpair");
    let mut a = Connection::new(x, config(kind, false)).expect("a");
    let one = Config {
        max_fds: 1,
        ..config(kind, false)
    };
    let mut b = Connection::new(y, one).expect("b");
    let (r, mut w) = pipe();
    assert!(a.send(b"two", &raw(&[&r, &r])).expect("send"));
    drop(r);
    let events = b.read(16, 253);
    assert!(
        matches!(&events[..], [Event::Error(Error::FdsTruncated { .. })]),
        "{events:?}"
    );
    assert!(!has_reader(&mut w));
}

#[cfg(target_os = "linux")]
#[test]
fn a_seqpacket_peer_that_closed_with_messages_unread_still_delivers_its_own_then_ends() {
    let (mut a, mut b) = pair(SocketType::SeqPacket, false);
    assert!(a.send(b"one", &[]).expect("send"));
    assert!(a.send(b"two", &[]).expect("send"));
    // b's message is never read by a: closing a makes the kernel report
    // ECONNRESET to b before the messages a sent.
    assert!(b.send(b"unread", &[]).expect("send"));
    drop(a.close());
    b.set_reading(16, 253);
    let (msgs, rest) = messages(b.read(16, 253));
    assert_eq!(
        msgs.iter().map(|(d, _)| d.as_slice()).collect::<Vec<_>>(),
        [b"one", b"two"]
    );
    assert!(matches!(&rest[..], [Event::End]), "{rest:?}");
    assert!(!b.interest().readable, "nothing more to read after the end");
}

#[test]
fn the_end_of_a_stream_is_an_event_and_a_cut_frame_is_a_protocol_error() {
    let (mut a, mut b) = pair(SocketType::Stream, true);
    assert!(a.send(b"last", &[]).expect("send"));
    drop(a.close());
    let (msgs, rest) = messages(b.read(16, 253));
    assert_eq!(msgs.len(), 1);
    assert!(matches!(&rest[..], [Event::End]), "{rest:?}");

    let (x, y) = socket_pair(SocketType::Stream).expect("socketpair");
    let mut b = Connection::new(y, config(SocketType::Stream, true)).expect("b");
    // A header announcing 10 bytes, then 3 of them, then the end.
    let mut header = fdpass::frame::encode_header(10, 0).to_vec();
    header.extend_from_slice(b"abc");
    std::fs::File::from(x).write_all(&header).expect("write");
    let events = b.read(16, 253);
    assert!(
        matches!(&events[..], [Event::Error(Error::Protocol { .. })]),
        "{events:?}"
    );
}

#[test]
fn a_frame_announcing_fds_that_did_not_come_is_a_protocol_error_and_closes_what_came() {
    let (x, y) = socket_pair(SocketType::Stream).expect("socketpair");
    let mut b = Connection::new(y, config(SocketType::Stream, true)).expect("b");
    let (r, mut w) = pipe();
    // One fd sent with a header that announces two.
    let mut frame = fdpass::frame::encode_header(1, 2).to_vec();
    frame.push(b'x');
    fdpass::send_fds(x.as_fd(), &frame, &[r.as_raw_fd()]).expect("send");
    drop(r);
    let events = b.read(16, 253);
    assert!(
        matches!(&events[..], [Event::Error(Error::Protocol { .. })]),
        "{events:?}"
    );
    assert!(!has_reader(&mut w), "the fd that came is closed");
}

#[test]
fn close_returns_the_socket_and_drops_queued_sends_with_their_fds() {
    let (mut a, _b) = pair(SocketType::Stream, true);
    let filler = vec![0u8; 16 * 1024];
    while a.send(&filler, &[]).expect("send") {}
    let (r, mut w) = pipe();
    assert!(!a.send(b"queued", &raw(&[&r])).expect("queued"));
    drop(r);
    assert!(has_reader(&mut w));
    let fd = a.close().expect("the socket, once");
    assert!(fd.as_raw_fd() >= 0);
    assert!(!has_reader(&mut w), "the queued duplicate is closed");
    assert!(a.close().is_none(), "a second close has nothing to return");
    assert_eq!(a.raw_fd(), -1);
    assert!(a.send(b"x", &[]).is_err_and(|e| e.code() == "EBADF"));
    assert!(a.read(1, 1).is_empty());
}

/// The child half of [`running_out_of_fds_on_accept_is_reported_and_the_listener_survives`]:
/// runs only in the subprocess that test starts (its RLIMIT_NOFILE is lowered).
#[test]
fn emfile_child() {
    if std::env::var_os("FDPASS_EMFILE_CHILD").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("fdpass-emfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s");
    let listener = fdpass::new_socket(SocketType::Stream).expect("socket");
    let addr = fdpass::unix::unix_addr(path.as_os_str().as_encoded_bytes(), "bind").expect("addr");
    fdpass::unix::bind(listener.as_fd(), &addr).expect("bind");
    fdpass::unix::listen(listener.as_fd(), 8).expect("listen");
    fdpass::set_nonblocking(listener.as_fd(), true).expect("nonblocking");
    let listening = Config {
        listening: true,
        ..config(SocketType::Stream, false)
    };
    let mut server = Connection::new(listener, listening).expect("server");
    let client = fdpass::new_socket(SocketType::Stream).expect("client");
    fdpass::unix::connect(client.as_fd(), &addr).expect("connect");
    // Take every fd the limit leaves.
    let mut fillers = Vec::new();
    while let Ok(fd) = fdpass::dup_cloexec(client.as_fd()) {
        fillers.push(fd);
        assert!(fillers.len() < 10_000, "the lowered limit did not apply");
    }
    let events = server.read(8, 253);
    assert!(
        matches!(&events[..], [Event::WriteError(e, 0)] if e.errno() == Some(libc::EMFILE) && e.syscall() == Some("accept")),
        "{events:?}"
    );
    // Room for the connection, and for the next accept to find the queue
    // empty (Linux takes an fd number before it looks at the queue).
    fillers.truncate(fillers.len() - 2);
    let events = server.read(8, 253);
    assert!(
        matches!(&events[..], [Event::Accepted(fds)] if fds.len() == 1),
        "{events:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn running_out_of_fds_on_accept_is_reported_and_the_listener_survives() {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe);
    child
        .args(["--exact", "emfile_child", "--nocapture", "--test-threads=1"])
        .env("FDPASS_EMFILE_CHILD", "1");
    // Lower the child's limit between fork and exec (the parent's stays).
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut child, || {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = child.output().expect("child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("test emfile_child ... ok"),
        "the child ran the test: {stdout}"
    );
}
