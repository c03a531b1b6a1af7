//! The file of a named socket: a lock beside it, so that processes placing a
//! socket at the same path (checking for a stale file, removing it, binding,
//! listening) take turns, and its permissions, set without a window.
//!
//! The lock is `flock` on `<path>.lock`: released when its fd is closed, by
//! the process or by its death. The holder removes the lock file before it
//! lets go, so none is left behind; a taker therefore checks, once it holds
//! the lock, that the file it locked is still the one at that path (the
//! previous holder may have removed it in between), and tries again if not.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::error::{Error, Result};

/// A held lock on a lock file (see the module docs). Dropping it closes the
/// fd, which releases the lock, without removing the file: call
/// [`PathLock::release`] to do both.
#[derive(Debug)]
pub struct PathLock {
    fd: OwnedFd,
    path: CString,
}

fn c_path(path: &[u8]) -> Result<CString> {
    CString::new(path).map_err(|_| Error::InvalidArgument {
        reason: "the path contains a NUL byte".into(),
    })
}

fn lstat(path: &CString) -> std::result::Result<libc::stat, Errno> {
    // SAFETY: stat is plain data; lstat writes one into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: path is a NUL-terminated string; st is a live stat.
    Errno::result(unsafe { libc::lstat(path.as_ptr(), &mut st) }).map(|_| st)
}

fn fstat(fd: BorrowedFd<'_>) -> std::result::Result<libc::stat, Errno> {
    // SAFETY: as in lstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is a live stat.
    Errno::result(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }).map(|_| st)
}

fn same_file(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

impl PathLock {
    /// Takes the lock on the file at `path` (created if need be, mode 0600),
    /// without waiting: `None` while another holds it.
    ///
    /// The file is opened without following a symbolic link and without
    /// blocking (a FIFO planted there cannot hang the caller), and must be a
    /// regular file.
    pub fn try_lock(path: &[u8]) -> Result<Option<PathLock>> {
        let path = c_path(path)?;
        loop {
            let flags =
                libc::O_RDONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
            // SAFETY: path is NUL-terminated; open returns a new fd or -1.
            let raw = unsafe { libc::open(path.as_ptr(), flags, 0o600 as libc::c_uint) };
            if raw < 0 {
                // The lock file goes beside the socket file: a directory
                // that does not exist fails the bind that placing the socket
                // is, and says so.
                let errno = Errno::last();
                let syscall = if matches!(errno, Errno::ENOENT | Errno::ENOTDIR) {
                    "bind"
                } else {
                    "open"
                };
                return Err(Error::os(errno, syscall));
            }
            // SAFETY: open just returned this fd, which nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let st = fstat(fd.as_fd()).map_err(|e| Error::os(e, "fstat"))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "the lock file {} is not a regular file: remove it",
                        path.to_string_lossy()
                    ),
                });
            }
            loop {
                // SAFETY: flock on an open fd.
                match Errno::result(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
                    Ok(_) => break,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EWOULDBLOCK) => return Ok(None),
                    Err(e) => return Err(Error::os(e, "flock")),
                }
            }
            // The previous holder removes the file before letting go: is
            // what we locked still the file at `path`?
            match lstat(&path) {
                Ok(now) if same_file(&now, &st) => return Ok(Some(PathLock { fd, path })),
                Ok(_) | Err(Errno::ENOENT) => continue,
                Err(e) => return Err(Error::os(e, "lstat")),
            }
        }
    }

    /// The lock's fd, which holds the lock for as long as it is open.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The lock again, from the fd [`into_fd`](Self::into_fd) gave for `path`.
    pub fn from_fd(fd: OwnedFd, path: &[u8]) -> Result<PathLock> {
        Ok(PathLock {
            fd,
            path: c_path(path)?,
        })
    }

    /// Removes the lock file (if it is still the one locked), then releases
    /// the lock.
    pub fn release(self) {
        if let (Ok(held), Ok(now)) = (fstat(self.fd.as_fd()), lstat(&self.path)) {
            if same_file(&held, &now) {
                // SAFETY: path is NUL-terminated. A failure leaves a lock
                // file, which the next taker reuses.
                unsafe { libc::unlink(self.path.as_ptr()) };
            }
        }
    }
}

/// Gives the file that binding `fd` will create the permissions `mode`
/// (less the umask's bits) from its creation on: Linux makes a socket file
/// with the socket's own mode, which `fchmod` on the socket sets. Elsewhere
/// (macOS takes the umask only) this does nothing: set the mode with
/// [`chmod_socket_file`] before the socket listens.
#[cfg(target_os = "linux")]
pub fn preset_mode(fd: BorrowedFd<'_>, mode: u32) -> Result<()> {
    // SAFETY: fchmod on an open fd.
    Errno::result(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })
        .map(drop)
        .map_err(|e| Error::os(e, "fchmod"))
}

/// See the Linux version: macOS makes a socket file with the umask's
/// permissions whatever the socket's own mode.
#[cfg(not(target_os = "linux"))]
pub fn preset_mode(_fd: BorrowedFd<'_>, _mode: u32) -> Result<()> {
    Ok(())
}

/// Sets the permissions of the socket file at `path` to `mode`, without
/// following a symbolic link, and only if it is a socket.
pub fn chmod_socket_file(path: &[u8], mode: u32) -> Result<()> {
    let path = c_path(path)?;
    let st = lstat(&path).map_err(|e| Error::os(e, "lstat"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(Error::InvalidArgument {
            reason: format!(
                "{} is no longer the socket just bound there (was it replaced?)",
                path.to_string_lossy()
            ),
        });
    }
    // SAFETY: path is NUL-terminated.
    Errno::result(unsafe {
        libc::fchmodat(
            libc::AT_FDCWD,
            path.as_ptr(),
            mode as libc::mode_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
    .map_err(|e| Error::os(e, "chmod"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_no_file_left() {
        let dir = std::env::temp_dir().join(format!("fdpass-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s.lock");
        let bytes = path.to_str().expect("utf-8").as_bytes().to_vec();
        let first = PathLock::try_lock(&bytes).expect("lock").expect("free");
        assert!(PathLock::try_lock(&bytes).expect("lock").is_none(), "held");
        first.release();
        assert!(!path.exists(), "the lock file is removed on release");
        let again = PathLock::try_lock(&bytes).expect("lock").expect("free again");
        // Dropped without release: the lock goes, the file stays and is reused.
        drop(again);
        assert!(path.exists());
        PathLock::try_lock(&bytes).expect("lock").expect("free").release();
        // A symbolic link is not followed.
        std::os::unix::fs::symlink(dir.join("elsewhere"), &path).expect("symlink");
        assert!(PathLock::try_lock(&bytes).is_err());
        assert!(!dir.join("elsewhere").exists());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
