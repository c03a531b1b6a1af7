//! The lean calls' scratch: one block of memory that a caller in another
//! language (the Node.js binding's JavaScript) and this crate share, through
//! which the per-message calls exchange integer arguments and results, fd
//! numbers and small payloads instead of converting them one by one.
//!
//! Layout (the constants of [`crate::wire_constants`], which the TypeScript
//! side gets generated from the same source):
//! - bytes [0, SCRATCH_FD_BYTES): i32 fd slots. Sends send slots [0, count),
//!   [`Scratch::close_slots`] closes them; [`Scratch::recv`] writes the fd
//!   count in slot 0 and the fds in slots 1..=count.
//! - bytes [SCRATCH_FD_BYTES, SCRATCH_INTS_AT): received data, or the data to
//!   send when it is small (copied there by the caller: cheaper than handing
//!   over a buffer of its own).
//! - bytes [SCRATCH_INTS_AT, SCRATCH_LEN): SCRATCH_INT_SLOTS i32 integer
//!   arguments, written by the caller before the call; the call's result
//!   replaces the first one.
//!
//! Every argument read from the scratch is checked (counts against the slots,
//! lengths against the data area, no negative numbers): the memory is
//! written by code this crate does not control, and a malformed call is
//! refused with [`CallError::Malformed`] before any syscall.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;

use crate::cmsg::ControlBuffer;
use crate::error::{Error, Result};
use crate::message::{recv_fds_into, send_fds, send_fds_on_unix};
use crate::wire_constants::{
    SCRATCH_DATA_BYTES, SCRATCH_FD_BYTES, SCRATCH_FD_SLOTS, SCRATCH_INTS_AT, SCRATCH_INT_SLOTS,
};

/// A call whose arguments in the scratch are out of range. A type of its
/// own, with no payload, so that the accessors cost what an `Option` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Why a lean call failed.
#[derive(Debug)]
pub enum CallError {
    /// The arguments in the scratch are out of range: a caller that does not
    /// follow the layout (a mismatched build), never a user's input.
    Malformed,
    /// The call ran and failed.
    Failed(Error),
}

impl From<Malformed> for CallError {
    fn from(_: Malformed) -> Self {
        CallError::Malformed
    }
}

impl From<Error> for CallError {
    fn from(e: Error) -> Self {
        CallError::Failed(e)
    }
}

/// The result of a lean call.
pub type CallResult<T> = std::result::Result<T, CallError>;

/// Whether a send first checks that its socket is `AF_UNIX` (see
/// [`crate::send_fds`]): off only for a socket its owner checked once and has
/// held ever since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixCheck {
    /// One getsockopt per send: the socket is a number the caller passed.
    EverySend,
    /// None: the caller owns the socket and checked it when it took it.
    Checked,
}

/// A view of the scratch memory, with the receive control buffer the lean
/// receives reuse.
pub struct Scratch {
    base: NonNull<u8>,
    control: ControlBuffer,
}

impl Scratch {
    /// The scratch at `base`; None if `base` is null or not 4-aligned.
    ///
    /// # Safety
    /// `base` points to `SCRATCH_LEN` bytes that stay valid for reads and
    /// writes as long as the returned `Scratch` lives, and that nothing else
    /// reads or writes while one of its methods runs (for the binding: the
    /// scratch ArrayBuffer, kept alive and never detached, which JavaScript
    /// cannot touch during a native call).
    pub unsafe fn from_raw(base: *mut u8) -> Option<Scratch> {
        let base = NonNull::new(base)?;
        (base.as_ptr() as usize % std::mem::align_of::<i32>() == 0).then(|| Scratch {
            base,
            control: ControlBuffer::new(),
        })
    }

    /// Integer argument `i` of the running call, as the caller wrote it.
    pub fn int(&self, i: usize) -> Result<i32, Malformed> {
        if i >= SCRATCH_INT_SLOTS {
            return Err(Malformed);
        }
        // SAFETY: slot i lies inside the scratch (from_raw's promise), and is
        // aligned (the base is 4-aligned, SCRATCH_INTS_AT a multiple of 4).
        Ok(unsafe { self.ints().add(i).read() })
    }

    /// Integer argument `i` as a count or length: negative ones are refused.
    pub fn count(&self, i: usize) -> Result<usize, Malformed> {
        usize::try_from(self.int(i)?).map_err(|_| Malformed)
    }

    /// Sets the call's result (integer slot 0).
    pub fn set_result(&self, value: i32) {
        // SAFETY: slot 0 lies inside the scratch, aligned, as for `int`; no
        // method hands out a reference to the integer slots, so none aliases
        // this write.
        unsafe { self.ints().write(value) }
    }

    /// Where the result goes, for a call that must let the caller's code run
    /// (which may make calls of its own through the scratch) before it has a
    /// result, and so cannot hold on to its `Scratch` meanwhile. Valid as
    /// long as the memory `from_raw` was given.
    pub fn result_slot(&self) -> *mut i32 {
        self.ints()
    }

    fn ints(&self) -> *mut i32 {
        // SAFETY: SCRATCH_INTS_AT is inside the scratch (from_raw's promise).
        unsafe { self.base.as_ptr().add(SCRATCH_INTS_AT).cast::<i32>() }
    }

    /// The first `count` fd slots.
    pub fn fd_slots(&self, count: usize) -> Result<&[RawFd], Malformed> {
        if count > SCRATCH_FD_SLOTS {
            return Err(Malformed);
        }
        // SAFETY: in bounds (count <= SCRATCH_FD_SLOTS) and aligned; the
        // borrow of `self` keeps out every `&mut` into the scratch (`recv`
        // takes `&mut self`), and nothing else writes it meanwhile
        // (from_raw's promise).
        Ok(unsafe { std::slice::from_raw_parts(self.base.as_ptr().cast::<RawFd>(), count) })
    }

    /// The first `len` bytes of the data area.
    pub fn data(&self, len: usize) -> Result<&[u8], Malformed> {
        if len > SCRATCH_DATA_BYTES {
            return Err(Malformed);
        }
        // SAFETY: as for fd_slots; the data area follows the fd slots.
        Ok(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(SCRATCH_FD_BYTES), len) })
    }

    /// Puts the fds of a receive in the slots as [`Scratch::recv`] does: the
    /// count in slot 0, the fds in slots 1..=count; malformed (and nothing
    /// written) if they do not fit.
    pub fn set_received_fds(&mut self, fds: &[impl AsRawFd]) -> Result<(), Malformed> {
        if fds.len() >= SCRATCH_FD_SLOTS {
            return Err(Malformed);
        }
        // SAFETY: every slot is in bounds and aligned; `&mut self` makes this
        // the only reference into the scratch while it lives.
        let slots =
            unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().cast::<RawFd>(), SCRATCH_FD_SLOTS) };
        // At most SCRATCH_FD_SLOTS - 1.
        slots[0] = fds.len() as i32;
        for (slot, fd) in slots[1..].iter_mut().zip(fds) {
            *slot = fd.as_raw_fd();
        }
        Ok(())
    }

    /// The message a send call describes, and its target (a socket number,
    /// or whatever the caller names its sockets by): integers
    /// [target, fdCount] when the data is the caller's own (`external`), or
    /// [target, dataLength, fdCount] for data in the scratch's data area. The
    /// fds are in slots [0, fdCount).
    pub fn outgoing<'a>(
        &'a self,
        external: Option<&'a [u8]>,
    ) -> Result<(i32, &'a [u8], &'a [RawFd]), Malformed> {
        let target = self.int(0)?;
        let (data, fd_count) = match external {
            Some(data) => (data, self.count(1)?),
            None => (self.data(self.count(1)?)?, self.count(2)?),
        };
        Ok((target, data, self.fd_slots(fd_count)?))
    }

    /// Sends the message [`Scratch::outgoing`] describes on the socket
    /// number in integer 0; the result is the bytes sent.
    pub fn send(&self, external: Option<&[u8]>, check: UnixCheck) -> CallResult<()> {
        let (socket, data, fds) = self.outgoing(external)?;
        let sent = with_socket(socket, |socket| match check {
            UnixCheck::EverySend => send_fds(socket, data, fds),
            UnixCheck::Checked => send_fds_on_unix(socket, data, fds),
        })?;
        // A single sendmsg moves less than 2 GiB (Linux caps it below i32::MAX).
        self.set_result(i32::try_from(sent).unwrap_or(i32::MAX));
        Ok(())
    }

    /// Receives one message, integers [socket, maxBytes, maxFds], into the
    /// scratch: the result is the byte count (in the data area); the fd
    /// count is in slot 0 and the fds, owned by the caller, in slots
    /// 1..=count. The checks and cleanup of [`crate::recv_fds`].
    pub fn recv(&mut self) -> CallResult<()> {
        let socket = self.int(0)?;
        let len = self.count(1)?;
        let max_fds = self.count(2)?;
        // Slot 0 takes the count: at most SCRATCH_FD_SLOTS - 1 fds.
        if len > SCRATCH_DATA_BYTES || max_fds >= SCRATCH_FD_SLOTS {
            return Err(CallError::Malformed);
        }
        // SAFETY: both areas are in bounds, aligned and disjoint; `&mut self`
        // makes them the only references into the scratch while they live,
        // and nothing else touches it meanwhile (from_raw's promise).
        let (data, slots) = unsafe {
            (
                std::slice::from_raw_parts_mut(self.base.as_ptr().add(SCRATCH_FD_BYTES), len),
                std::slice::from_raw_parts_mut(self.base.as_ptr().cast::<RawFd>(), SCRATCH_FD_SLOTS),
            )
        };
        let (count_slot, fds_out) = slots.split_at_mut(1);
        let control = &mut self.control;
        let received = with_socket(socket, |socket| {
            recv_fds_into(socket, data, max_fds, control, fds_out)
        })?;
        // Both fit: at most SCRATCH_FD_SLOTS fds and SCRATCH_DATA_BYTES bytes.
        count_slot[0] = received.fd_count as i32;
        self.set_result(received.len as i32);
        Ok(())
    }

    /// Closes the fds in slots [0, count), integers [count]: every one, even
    /// when some fail; the first failure is the error.
    pub fn close_slots(&self) -> CallResult<()> {
        Ok(crate::fd::close_fds(self.fd_slots(self.count(0)?)?)?)
    }
}

/// Runs `f` on socket number `fd` from the scratch, borrowed for the call:
/// the caller keeps ownership.
fn with_socket<R>(fd: RawFd, f: impl FnOnce(BorrowedFd<'_>) -> Result<R>) -> Result<R> {
    if fd < 0 {
        return Err(Error::InvalidArgument {
            reason: format!("fd must be a non-negative integer, got {fd}"),
        });
    }
    // SAFETY: the borrow ends with `f`, within the call that read the number;
    // a number that is not open makes the syscall fail with EBADF.
    f(unsafe { BorrowedFd::borrow_raw(fd) })
}
