//! Fuzzes the control-message parser with arbitrary control data, as a hostile
//! or buggy kernel/peer combination could leave it in the receive buffer.
//!
//! Invariants checked for every message the walk yields:
//! - its payload lies inside the buffer, after its own header, and after the
//!   previous message's payload (the walk only moves forward);
//! - `fds()` yields no negative fd, and exactly the non-negative whole
//!   `c_int`s of the payload, in order;
//! - `carries_fds()` holds for `SOL_SOCKET`/`SCM_RIGHTS`, never for another level;
//! - the walk ends, after at most one message per header-sized chunk.
//!
//! The input is walked twice: as given (any alignment, any length) and copied
//! into a zero-filled `ControlBuffer`, as the receive path does.

#![no_main]

use std::mem::size_of;

use fdpass::cmsg::{control_messages, ControlBuffer};
use libfuzzer_sys::fuzz_target;

const HEADER_LEN: usize = size_of::<libc::cmsghdr>();

fn walk(buf: &[u8]) {
    let lo = buf.as_ptr() as usize;
    let hi = lo + buf.len();
    let mut prev_end = lo;
    let mut count = 0usize;
    for msg in control_messages(buf) {
        count += 1;
        assert!(
            count <= buf.len() / HEADER_LEN,
            "more messages ({count}) than headers fit in {} bytes",
            buf.len()
        );
        let start = msg.data.as_ptr() as usize;
        let end = start + msg.data.len();
        if !msg.data.is_empty() {
            assert!(lo <= start && end <= hi, "payload outside the buffer");
            // A payload starts after the header that announced it, and after
            // every earlier message.
            assert!(start >= prev_end + HEADER_LEN, "payload overlaps a header");
            prev_end = end;
        }

        let ints: Vec<i32> = msg
            .data
            .chunks_exact(size_of::<libc::c_int>())
            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let fds: Vec<i32> = msg.fds().collect();
        assert!(
            fds.iter().all(|fd| *fd >= 0),
            "a negative fd was yielded: {fds:?}"
        );
        let expected: Vec<i32> = ints.into_iter().filter(|fd| *fd >= 0).collect();
        assert_eq!(fds, expected, "fds() is not the payload's non-negative ints");

        let carries = msg.carries_fds();
        if msg.level == libc::SOL_SOCKET && msg.kind == libc::SCM_RIGHTS {
            assert!(carries, "SCM_RIGHTS not recognised as carrying fds");
        }
        if msg.level != libc::SOL_SOCKET {
            assert!(!carries, "level {} said to carry fds", msg.level);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    walk(data);

    let mut aligned = ControlBuffer::new();
    aligned.fill_from(data);
    walk(aligned.bytes());
    // The receive path walks through ControlBuffer::walk: the same messages.
    let mut yielded = 0usize;
    aligned.walk(|_| yielded += 1);
    assert_eq!(yielded, control_messages(aligned.bytes()).count());
});
