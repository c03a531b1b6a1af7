//! Helpers shared by the integration tests: telling whether an fd was
//! closed without looking at fd numbers, and auditing this process's fds.
//!
//! The tests of one file run in parallel threads of one process, which reuse
//! fd numbers: a pipe's write end tells whether any copy of its read end is
//! still open (EPIPE once none is), and audits hold one lock so that no two
//! overlap.

// Each test file uses some of these helpers only.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// A pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, std::fs::File) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    (r, std::fs::File::from(w))
}

/// Whether some copy of the pipe's read end is still open somewhere.
pub fn has_reader(write_end: &mut std::fs::File) -> bool {
    match write_end.write(b"x") {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => false,
        Err(e) => panic!("write to pipe: {e}"),
    }
}

/// Audits must not overlap: the other tests' fds would show up.
static AUDIT: Mutex<()> = Mutex::new(());

/// The open fds of this process below 4096, asked of each number (works
/// without /proc).
pub fn open_fds() -> BTreeSet<RawFd> {
    (0..4096)
        .filter(|&fd| {
            // SAFETY: only asks F_GETFD of a number; a closed one yields EBADF.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok()
        })
        .collect()
}

/// Runs `f` and asserts that this process has exactly the same fds after.
/// Every test of a file that opens fds must run under it.
pub fn audited(f: impl FnOnce()) {
    let _guard = AUDIT.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    f();
    assert_eq!(open_fds(), before, "the set of open fds changed");
}
