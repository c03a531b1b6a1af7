//! Small operations on single fds: flags, kind, duplication, closing.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::stat::{fstat, SFlag};

use crate::error::{Error, Result};

/// Sets close-on-exec on `fd`.
pub fn set_cloexec(fd: RawFd) -> Result<()> {
    // SAFETY: the fd is only borrowed for this one fcntl call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(drop)
        .map_err(|e| Error::os(e, "fcntl"))
}

/// Whether close-on-exec is set on `fd`.
pub fn is_cloexec(fd: BorrowedFd<'_>) -> Result<bool> {
    let flags = fcntl(fd, FcntlArg::F_GETFD).map_err(|e| Error::os(e, "fcntl"))?;
    Ok(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC))
}

/// Sets or clears `O_NONBLOCK` on `fd`. The flag lives in the open file
/// description, so every process holding a copy of the fd sees the change.
pub fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| Error::os(e, "fcntl"))?;
    let mut flags = OFlag::from_bits_truncate(flags);
    if flags.contains(OFlag::O_NONBLOCK) == nonblocking {
        return Ok(());
    }
    flags.set(OFlag::O_NONBLOCK, nonblocking);
    fcntl(fd, FcntlArg::F_SETFL(flags))
        .map(drop)
        .map_err(|e| Error::os(e, "fcntl"))
}

/// Duplicates `fd` into a new close-on-exec fd.
pub fn dup_cloexec(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(0)).map_err(|e| Error::os(e, "fcntl"))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Closes every fd in `fds`, even when some fail; reports the first failure.
pub fn close_fds(fds: &[RawFd]) -> Result<()> {
    let mut first_error = None;
    for &fd in fds {
        // EINTR is not retried: Linux and macOS release the fd even then.
        let r = close_one(fd);
        if r == -1 && first_error.is_none() {
            let errno = Errno::last();
            if errno != Errno::EINTR {
                first_error = Some(Error::os(errno, "close"));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// close(2) on Linux without glibc's cancellation-point wrapper: in a
/// multi-threaded process (every Node.js process) libc's `close` switches
/// asynchronous cancellation on and off around the syscall, which costs about
/// as much again as closing a received fd. fdpass never uses pthread
/// cancellation, so the wrapper buys nothing here; with 253 fds per message it
/// is a sixth of the receive-and-close time.
#[cfg(target_os = "linux")]
fn close_one(fd: RawFd) -> libc::c_int {
    // SAFETY: closing a plain integer fd; the caller hands over its ownership.
    // The raw syscall has close(2)'s exact semantics (and returns -1 with
    // errno set, as libc's wrapper does).
    unsafe { libc::syscall(libc::SYS_close, fd) as libc::c_int }
}

#[cfg(not(target_os = "linux"))]
fn close_one(fd: RawFd) -> libc::c_int {
    // SAFETY: closing a plain integer fd; the caller hands over its ownership.
    unsafe { libc::close(fd) }
}

/// What an fd refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A socket of any family.
    Socket,
    /// A pipe or FIFO.
    Fifo,
    /// A character device (a terminal, `/dev/null`, ...).
    CharacterDevice,
    /// A block device.
    BlockDevice,
    /// A symbolic link (only an `O_PATH | O_NOFOLLOW` fd can be one).
    Symlink,
    /// Anything else (eventfd, epoll, ... report no file type on Linux).
    Unknown,
}

impl FdKind {
    /// The name used by the JavaScript API.
    pub fn name(self) -> &'static str {
        match self {
            FdKind::File => "file",
            FdKind::Directory => "directory",
            FdKind::Socket => "socket",
            FdKind::Fifo => "fifo",
            FdKind::CharacterDevice => "character-device",
            FdKind::BlockDevice => "block-device",
            FdKind::Symlink => "symlink",
            FdKind::Unknown => "unknown",
        }
    }
}

/// What `fd` refers to, from `fstat`.
pub fn fd_kind(fd: BorrowedFd<'_>) -> Result<FdKind> {
    let st = fstat(fd).map_err(|e| Error::os(e, "fstat"))?;
    let format = SFlag::from_bits_truncate(st.st_mode as _) & SFlag::S_IFMT;
    Ok(match format {
        SFlag::S_IFREG => FdKind::File,
        SFlag::S_IFDIR => FdKind::Directory,
        SFlag::S_IFSOCK => FdKind::Socket,
        SFlag::S_IFIFO => FdKind::Fifo,
        SFlag::S_IFCHR => FdKind::CharacterDevice,
        SFlag::S_IFBLK => FdKind::BlockDevice,
        SFlag::S_IFLNK => FdKind::Symlink,
        _ => FdKind::Unknown,
    })
}
