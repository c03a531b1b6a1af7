//! Anonymous shared memory as an fd: what a Wayland `wl_shm` pool, a D-Bus
//! memfd argument or an fd store needs, and what Node.js cannot make itself.
//!
//! The fd is close-on-exec, readable and writable with plain `read`/`write`
//! (so JavaScript can fill it with `fs.writeSync`), mappable by a peer that
//! receives it, and has no name anyone could open.
//!
//! - Linux: `memfd_create` with `MFD_CLOEXEC | MFD_ALLOW_SEALING`, sized with
//!   `ftruncate`, then sealed with `F_SEAL_SHRINK`: a receiver that maps it
//!   can check (`F_GET_SEALS`) that it will never shrink under the mapping
//!   (no SIGBUS); it may still grow (`wl_shm_pool.resize`).
//! - macOS has no memfd. A POSIX `shm_open` object cannot be read or written
//!   there (only mapped) and can be sized only once, so it would not serve a
//!   JavaScript caller; a file created exclusively (mode 0600) in the user's
//!   temporary directory and unlinked at once can. No seals exist on macOS.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::error::{Error, Result};

/// The longest name `memfd_create` accepts (Linux's `MFD_NAME_MAX_LEN`:
/// 249 bytes, excluding the NUL).
pub const MAX_MEMFD_NAME: usize = 249;

/// Creates anonymous shared memory of `size` bytes (zero-filled) and returns
/// its fd, close-on-exec. `name` shows in `/proc/<pid>/fd` on Linux
/// (`memfd:<name>`); it has no meaning elsewhere.
///
/// Bad input (a name with a NUL byte or longer than [`MAX_MEMFD_NAME`], a
/// size beyond `off_t`) is refused before any syscall.
pub fn memfd(name: &str, size: u64) -> Result<OwnedFd> {
    if name.len() > MAX_MEMFD_NAME {
        return Err(Error::InvalidArgument {
            reason: format!(
                "the memfd name is {} bytes, longer than the {MAX_MEMFD_NAME} bytes memfd_create allows",
                name.len()
            ),
        });
    }
    if name.as_bytes().contains(&0) {
        return Err(Error::InvalidArgument {
            reason: "the memfd name must not contain a NUL byte".to_owned(),
        });
    }
    let Ok(size) = libc::off_t::try_from(size) else {
        return Err(Error::InvalidArgument {
            reason: format!("a memfd of {size} bytes is larger than a file can be"),
        });
    };
    let fd = create(name)?;
    resize(&fd, size)?;
    seal(&fd)?;
    Ok(fd)
}

fn resize(fd: &OwnedFd, size: libc::off_t) -> Result<()> {
    loop {
        // SAFETY: ftruncate on an fd this function's caller owns.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } == 0 {
            return Ok(());
        }
        let errno = Errno::last();
        if errno != Errno::EINTR {
            return Err(Error::os(errno, "ftruncate"));
        }
    }
}

#[cfg(target_os = "linux")]
fn create(name: &str) -> Result<OwnedFd> {
    use std::ffi::CString;
    use std::os::fd::FromRawFd;

    // The checks in memfd() leave no NUL byte in the name.
    let name = CString::new(name).map_err(|_| Error::InvalidArgument {
        reason: "the memfd name must not contain a NUL byte".to_owned(),
    })?;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // The raw syscall, not libc's memfd_create: glibc has the wrapper only
    // since 2.27, and the prebuilt binary links against glibc 2.17.
    // SAFETY: name is a valid NUL-terminated string for the duration of the
    // call; the flags are plain integers.
    let raw = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) };
    if raw < 0 {
        let errno = Errno::last();
        return Err(match errno {
            Errno::ENOSYS => Error::Unsupported {
                reason: "this kernel has no memfd_create (Linux 3.17 or later has it)",
                syscall: "memfd_create",
                errno,
            },
            _ => Error::os(errno, "memfd_create"),
        });
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) })
}

#[cfg(target_os = "linux")]
fn seal(fd: &OwnedFd) -> Result<()> {
    // SAFETY: fcntl(F_ADD_SEALS) on an fd the caller owns, with an int flag.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } == -1 {
        return Err(Error::os(Errno::last(), "fcntl"));
    }
    Ok(())
}

#[cfg(target_vendor = "apple")]
fn create(_name: &str) -> Result<OwnedFd> {
    use std::ffi::CString;
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // A name nobody else uses; O_EXCL makes a clash an error, never a
    // shared file, and the loop then tries the next name.
    for _ in 0..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".fdpass-memfd-{}-{n}-{nanos}", std::process::id()));
        let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidArgument {
            reason: "the temporary directory's path contains a NUL byte".to_owned(),
        })?;
        // SAFETY: path is a valid NUL-terminated string; mode is passed as
        // the variadic int open(2) expects with O_CREAT.
        let raw = unsafe { libc::open(path.as_ptr(), flags, 0o600 as libc::c_uint) };
        if raw < 0 {
            let errno = Errno::last();
            if errno == Errno::EEXIST || errno == Errno::EINTR {
                continue;
            }
            return Err(Error::os(errno, "open"));
        }
        // SAFETY: open returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: path is the valid NUL-terminated path just created.
        if unsafe { libc::unlink(path.as_ptr()) } == -1 {
            return Err(Error::os(Errno::last(), "unlink"));
        }
        return Ok(fd);
    }
    Err(Error::os(Errno::EEXIST, "open"))
}

#[cfg(target_vendor = "apple")]
fn seal(_fd: &OwnedFd) -> Result<()> {
    // macOS has no file seals.
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom, Write};

    use super::*;

    #[test]
    fn sized_zeroed_readable_writable_cloexec() {
        let fd = memfd("fdpass-test", 4096).expect("memfd");
        assert!(crate::fd::is_cloexec(std::os::fd::AsFd::as_fd(&fd)).expect("fcntl"));
        let mut file = File::from(fd);
        assert_eq!(file.metadata().expect("fstat").len(), 4096);
        let mut all = Vec::new();
        file.read_to_end(&mut all).expect("read");
        assert!(all.len() == 4096 && all.iter().all(|&b| b == 0));
        file.seek(SeekFrom::Start(10)).expect("seek");
        file.write_all(b"pattern").expect("write");
        let mut back = [0u8; 7];
        file.seek(SeekFrom::Start(10)).expect("seek");
        file.read_exact(&mut back).expect("read");
        assert_eq!(&back, b"pattern");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sealed_against_shrinking_but_not_growing() {
        let fd = memfd("fdpass-test", 8192).expect("memfd");
        // SAFETY: F_GET_SEALS on an fd this test owns.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals, libc::F_SEAL_SHRINK);
        let file = File::from(fd);
        assert_eq!(
            file.set_len(4096).map_err(|e| e.raw_os_error()),
            Err(Some(libc::EPERM))
        );
        file.set_len(16384).expect("growing is allowed");
        assert_eq!(file.metadata().expect("fstat").len(), 16384);
    }

    #[test]
    fn bad_names_and_sizes_are_refused() {
        let long = "x".repeat(MAX_MEMFD_NAME + 1);
        assert!(matches!(memfd(&long, 1), Err(Error::InvalidArgument { .. })));
        assert!(memfd(&"x".repeat(MAX_MEMFD_NAME), 1).is_ok());
        assert!(matches!(memfd("a\0b", 1), Err(Error::InvalidArgument { .. })));
        assert!(matches!(
            memfd("big", u64::MAX),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(memfd("", 0).is_ok());
    }
}
