//! What a connection does when its watcher reports readiness
//! (`Connection::on_ready`), over real socketpairs: a flush when writable, a
//! read when readable and the reader gave room, and the watcher's own error
//! only when the syscalls report nothing.

use std::os::fd::{AsRawFd, OwnedFd};

use fdpass::conn::{accepted_meta, Config, Connection, Event, Interest};
use fdpass::{socket_pair, Error, SocketType, MAX_FDS_PER_MESSAGE};

const READABLE: Interest = Interest {
    readable: true,
    writable: false,
};
const WRITABLE: Interest = Interest {
    readable: false,
    writable: true,
};

fn pair() -> (Connection, Connection) {
    let config = Config {
        kind: SocketType::Stream,
        listening: false,
        framing: true,
        max_bytes: 8 << 20,
        max_fds: MAX_FDS_PER_MESSAGE,
    };
    let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
    (
        Connection::new(a, config).expect("a"),
        Connection::new(b, config).expect("b"),
    )
}

/// The watcher's error for POLLERR/POLLHUP.
fn poll_error() -> Error {
    Error::os(nix::errno::Errno::EIO, "uv_poll")
}

fn message_count(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| match e {
            Event::Messages(batch) => batch.count(),
            _ => 0,
        })
        .sum()
}

#[test]
fn writable_sends_what_waits_in_the_queue() {
    let (mut a, mut b) = pair();
    let big = vec![1u8; 2 << 20];
    assert!(
        !a.send(&big, &[]).expect("send"),
        "larger than the socket buffer: queued"
    );
    assert!(a.interest().writable);
    b.set_reading(1, 1);
    let mut written = 0;
    for _ in 0..1000 {
        // The peer drains what arrived; the writer's readiness sends more.
        let _ = b.on_ready(READABLE, None);
        for event in a.on_ready(WRITABLE, None) {
            match event {
                Event::Written(n) => written += n,
                other => panic!("unexpected {other:?}"),
            }
        }
        if written > 0 {
            break;
        }
    }
    assert_eq!(written, 1);
    assert!(!a.interest().writable, "the queue is empty");
    assert!(a.on_ready(WRITABLE, None).is_empty(), "nothing left to send");
}

#[test]
fn readable_reads_only_with_room() {
    let (mut a, mut b) = pair();
    for _ in 0..3 {
        assert!(b.send(b"hello", &[]).expect("send"));
    }
    assert!(a.on_ready(READABLE, None).is_empty(), "no room given");
    a.set_reading(2, 8);
    assert!(a.on_ready(WRITABLE, None).is_empty(), "readable not reported");
    let events = a.on_ready(READABLE, None);
    assert_eq!(message_count(&events), 2, "up to the room");
    let events = a.on_ready(READABLE, None);
    assert_eq!(message_count(&events), 1);
    assert!(a.on_ready(READABLE, None).is_empty(), "nothing left");
}

#[test]
fn the_watchers_error_is_the_event_only_when_the_syscalls_report_nothing() {
    let (mut a, b) = pair();
    a.set_reading(1, 1);
    match a.on_ready(READABLE, Some(poll_error())).as_slice() {
        [Event::Error(e)] => assert_eq!(e.errno(), Some(libc::EIO)),
        other => panic!("expected the watcher's error, got {other:?}"),
    }
    drop(b);
    match a.on_ready(READABLE, Some(poll_error())).as_slice() {
        [Event::End] => {}
        other => panic!("expected the end of the stream, got {other:?}"),
    }
}

#[test]
fn accepted_meta_is_the_count_then_the_fds() {
    let (x, y) = socket_pair(SocketType::Stream).expect("socketpair");
    let fds: Vec<OwnedFd> = vec![x, y];
    let meta = accepted_meta(&fds);
    assert_eq!(meta, [2, fds[0].as_raw_fd(), fds[1].as_raw_fd()]);
    assert_eq!(accepted_meta(&[]), [0]);
}
