//! The buffer of a receive whose size limit is larger than a caller keeps at
//! hand (the raw `recvFds` with a `maxBytes` over the scratch's data area).
//!
//! Buffers up to [`KEPT_BYTES`] are kept for the next call on the thread. A
//! call with a larger limit gets a buffer of its own that is freed when it
//! returns: one receive with a limit of 2^29 bytes must not pin 512 MiB for
//! the life of the thread. That buffer is a zeroed allocation of that size,
//! which the allocator serves with pages the kernel zeroes on first touch, so
//! only the bytes that arrive cost memory even while the call runs.

use std::cell::RefCell;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::error::Result;
use crate::message::recv_fds;

/// Receive buffers up to this size are kept for the next call on the thread.
pub const KEPT_BYTES: usize = 256 * 1024;

thread_local! {
    /// The kept buffer, at most KEPT_BYTES, reused across calls on this thread.
    static KEPT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a buffer of `len` bytes (contents unspecified): the
/// thread's kept buffer when `len` is at most [`KEPT_BYTES`], else one
/// allocated for this call only.
pub fn with_buffer<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    if len > KEPT_BYTES {
        return f(&mut vec![0; len]);
    }
    KEPT.with(|kept| match kept.try_borrow_mut() {
        Ok(mut kept) => {
            if kept.len() < len {
                kept.resize(len, 0);
            }
            f(&mut kept[..len])
        }
        // `f` called with_buffer itself: the inner call gets its own.
        Err(_) => f(&mut vec![0; len]),
    })
}

/// Receives one message of at most `max_bytes` bytes and `max_fds` fds (as
/// [`crate::recv_fds`]) into a buffer of [`with_buffer`], and hands `f` the
/// bytes that arrived and the fds that came with them.
pub fn recv_fds_buffered<R>(
    socket: BorrowedFd<'_>,
    max_bytes: usize,
    max_fds: usize,
    f: impl FnOnce(&[u8], Vec<OwnedFd>) -> R,
) -> Result<R> {
    with_buffer(max_bytes, |buf| {
        let received = recv_fds(socket, buf, max_fds)?;
        Ok(f(&buf[..received.len], received.fds))
    })
}

/// The capacity of this thread's kept buffer (for tests of the policy).
pub fn kept_capacity() -> usize {
    KEPT.with(|kept| kept.try_borrow().map_or(0, |kept| kept.capacity()))
}
