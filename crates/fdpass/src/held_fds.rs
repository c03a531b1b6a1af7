//! The fds a JavaScript runtime holds on its user's behalf: every fd of a
//! received batch, from the moment the binding hands the batch over until
//! JavaScript hands the message to the user's code (or closes its fds).
//!
//! The marks are one byte per fd number (1: held) in memory JavaScript owns
//! ([`Region`]): set here when fds are handed over, cleared by JavaScript with
//! a plain store. Fds past the end of that memory are kept aside until
//! JavaScript grows it. When the runtime ends without JavaScript running
//! again (a worker thread terminated at any point, even in the middle of a
//! batch), [`HeldFds::close_all`] closes every fd still held.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

use crate::region::Region;

/// The held-fd marks of one copy of the JavaScript layer.
pub struct HeldFds {
    marks: Region<u8>,
    /// Held fds past the end of `marks`, until JavaScript grows it.
    beyond: Vec<RawFd>,
}

impl HeldFds {
    /// Marks kept in `marks` (all clear, or as JavaScript left them).
    pub fn new(marks: Region<u8>) -> Self {
        HeldFds {
            marks,
            beyond: Vec::new(),
        }
    }

    /// Marks `fd` as held.
    pub fn mark(&mut self, fd: RawFd) {
        let marked = usize::try_from(fd).is_ok_and(|i| self.marks.set(i, 1));
        if !marked {
            self.beyond.push(fd);
        }
    }

    /// Moves to `marks`, the grown copy JavaScript made of the current marks:
    /// the fds kept past the old end are marked in it (or kept aside again if
    /// they still do not fit).
    pub fn regrow(&mut self, marks: Region<u8>) {
        self.marks = marks;
        for fd in std::mem::take(&mut self.beyond) {
            self.mark(fd);
        }
    }

    /// Hands `fds` over to JavaScript: marks them held (when there are marks)
    /// and lets go of their ownership, leaving `fds` empty.
    pub fn hand_over(held: Option<&mut HeldFds>, fds: &mut Vec<OwnedFd>) {
        if let Some(held) = held {
            fds.iter().for_each(|fd| held.mark(fd.as_raw_fd()));
        }
        for fd in fds.drain(..) {
            let _ = fd.into_raw_fd();
        }
    }

    /// Clears the marks of `fds` (kept past the end or not) and closes them,
    /// for the fds nobody took. One step for JavaScript, which a worker's
    /// termination cannot split: cleared and left open, they would leak;
    /// closed and still marked, the teardown would close their numbers
    /// again, which another thread may have reused by then. Returns the first
    /// error of a close (every fd is closed and unmarked regardless).
    pub fn close(&mut self, fds: &[RawFd]) -> crate::Result<()> {
        for &fd in fds {
            let cleared = usize::try_from(fd).is_ok_and(|i| self.marks.set(i, 0));
            if !cleared {
                self.beyond.retain(|&held| held != fd);
            }
        }
        crate::close_fds(fds)
    }

    /// Closes every fd still marked and every fd kept past the end; returns
    /// them, in that order.
    ///
    /// # Safety
    /// Every held fd must be owned by this holder alone: nothing may use or
    /// close it after (JavaScript no longer runs, so nobody can take it).
    pub unsafe fn close_all(self) -> Vec<RawFd> {
        let marked = self.marks.positions(|m| m != 0).map(|fd| fd as RawFd);
        let held: Vec<RawFd> = marked.chain(self.beyond).collect();
        for &fd in &held {
            // SAFETY: the caller's promise: the fd is ours alone.
            unsafe { libc::close(fd) };
        }
        held
    }
}
