//! Named Unix domain sockets: addresses, bind, listen, connect, accept, and
//! the identity of the peer.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, UnixAddr};

use crate::error::{Error, Result};
use crate::socket::{new_socket, SocketType};

/// Parses a socket path for `syscall` (`"bind"` or `"connect"`). A leading NUL
/// byte names a Linux abstract socket, bound and connected with its exact
/// length (as systemd, socat and Python do).
pub fn unix_addr(path: &[u8], syscall: &'static str) -> Result<UnixAddr> {
    let max = max_path_len();
    if path.is_empty() {
        return Err(Error::InvalidArgument {
            reason: "the socket path must not be empty".into(),
        });
    }
    if path[0] == 0 {
        return abstract_addr(&path[1..], max, syscall);
    }
    if path.contains(&0) {
        return Err(Error::InvalidArgument {
            reason:
                "the socket path contains a NUL byte (only a leading one, for an abstract name, is allowed)"
                    .into(),
        });
    }
    if path.len() > max {
        return Err(Error::PathTooLong {
            len: path.len(),
            max,
            syscall,
        });
    }
    UnixAddr::new(path).map_err(|e| Error::os(e, syscall))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8], max: usize, syscall: &'static str) -> Result<UnixAddr> {
    // An abstract name has no terminating NUL: it may fill all of sun_path.
    if name.len() + 1 > max + 1 {
        return Err(Error::PathTooLong {
            len: name.len() + 1,
            max: max + 1,
            syscall,
        });
    }
    UnixAddr::new_abstract(name).map_err(|e| Error::os(e, syscall))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8], _max: usize, syscall: &'static str) -> Result<UnixAddr> {
    Err(Error::Unsupported {
        reason: "abstract socket names (a path starting with \\0) exist on Linux only",
        syscall,
        errno: Errno::EINVAL,
    })
}

/// The longest filesystem path `sun_path` holds, without its terminating NUL
/// (107 on Linux, 103 on macOS).
pub fn max_path_len() -> usize {
    // SAFETY: sockaddr_un is plain data; only the array length is read.
    let addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_path.len() - 1
}

/// Binds `fd` to `addr`.
pub fn bind(fd: BorrowedFd<'_>, addr: &UnixAddr) -> Result<()> {
    socket::bind(fd.as_raw_fd(), addr).map_err(|e| Error::os(e, "bind"))
}

/// Starts listening on a bound socket, with a queue of up to `backlog`
/// pending connections. As with Node's `net`, any backlog works: the kernel
/// silently caps it at its own maximum (Linux: `net.core.somaxconn`; macOS:
/// `kern.ipc.somaxconn`), as `listen(2)` documents on both. A negative
/// backlog counts as 0 (POSIX).
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> Result<()> {
    // Not nix's `Backlog`: it refuses anything above the C library's
    // SOMAXCONN constant (4096 on glibc, 128 on musl and macOS), which is not
    // the kernel's limit, with EINVAL, so the default of 511 failed on musl
    // and macOS.
    // SAFETY: listen(2) reads no memory of ours: it takes an fd that the
    // borrow keeps open for the call, and an integer.
    let rc = unsafe { libc::listen(fd.as_raw_fd(), backlog.max(0)) };
    Errno::result(rc).map(drop).map_err(|e| Error::os(e, "listen"))
}

/// Outcome of a non-blocking connect.
#[derive(Debug)]
pub enum Connect {
    /// Connected.
    Done,
    /// The listener's backlog is full (EAGAIN): try again a little later.
    Retry,
}

/// Connects `fd` (non-blocking) to `addr`. A Unix connect completes at once or
/// fails with EAGAIN when the listener's backlog is full; there is no
/// in-progress state to wait for, so the caller retries after a delay.
pub fn connect(fd: BorrowedFd<'_>, addr: &UnixAddr) -> Result<Connect> {
    loop {
        match socket::connect(fd.as_raw_fd(), addr) {
            Ok(()) => return Ok(Connect::Done),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) | Err(Errno::EINPROGRESS) => return Ok(Connect::Retry),
            Err(Errno::EISCONN) => return Ok(Connect::Done),
            Err(errno) => return Err(Error::os(errno, "connect")),
        }
    }
}

/// Accepts one connection; `None` when none is waiting. The new socket is
/// close-on-exec and non-blocking.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Option<OwnedFd>> {
    loop {
        match accept_raw(listener) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(errno) => return Err(Error::os(errno, "accept")),
        }
    }
}

#[cfg(target_os = "linux")]
fn accept_raw(listener: BorrowedFd<'_>) -> std::result::Result<OwnedFd, Errno> {
    use nix::sys::socket::SockFlag;
    let raw = socket::accept4(
        listener.as_raw_fd(),
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )?;
    // SAFETY: accept4 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

#[cfg(not(target_os = "linux"))]
fn accept_raw(listener: BorrowedFd<'_>) -> std::result::Result<OwnedFd, Errno> {
    let raw = socket::accept(listener.as_raw_fd())?;
    // SAFETY: accept returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // macOS has no accept4: set the flags before anyone can see the fd.
    crate::socket::prepare_new_socket(&fd).map_err(|e| Errno::from_raw(e.errno().unwrap_or(libc::EIO)))?;
    crate::fd::set_nonblocking(fd.as_fd(), true)
        .map_err(|e| Errno::from_raw(e.errno().unwrap_or(libc::EIO)))?;
    Ok(fd)
}

/// Who is at the other end of a connected socket, as of connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// The peer's process id (Linux: at connect time; macOS: the last process
    /// to use the peer socket). `None` where the platform cannot tell.
    pub pid: Option<i32>,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// The credentials of the peer of a connected socket.
#[cfg(target_os = "linux")]
pub fn peer_credentials(fd: BorrowedFd<'_>) -> Result<PeerCredentials> {
    let cred =
        socket::getsockopt(&fd, socket::sockopt::PeerCredentials).map_err(|e| Error::os(e, "getsockopt"))?;
    let pid = (cred.pid() > 0).then_some(cred.pid());
    Ok(PeerCredentials {
        pid,
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// The credentials of the peer of a connected socket.
#[cfg(target_vendor = "apple")]
pub fn peer_credentials(fd: BorrowedFd<'_>) -> Result<PeerCredentials> {
    let cred =
        socket::getsockopt(&fd, socket::sockopt::LocalPeerCred).map_err(|e| Error::os(e, "getsockopt"))?;
    let pid = socket::getsockopt(&fd, socket::sockopt::LocalPeerPid)
        .ok()
        .filter(|p| *p > 0);
    // xucred has no gid of its own: its first group is the effective gid.
    let gid = cred.groups().first().copied().unwrap_or(u32::MAX);
    Ok(PeerCredentials {
        pid,
        uid: cred.uid(),
        gid,
    })
}

/// Whether something accepts connections at `addr` (used to tell a live
/// server's socket file from a stale one left by a dead process).
pub fn is_listening(kind: SocketType, addr: &UnixAddr) -> Result<bool> {
    let probe = new_socket(kind)?;
    crate::fd::set_nonblocking(probe.as_fd(), true)?;
    match socket::connect(probe.as_raw_fd(), addr) {
        Ok(()) | Err(Errno::EAGAIN) | Err(Errno::EINPROGRESS) => Ok(true),
        Err(Errno::ECONNREFUSED) | Err(Errno::ENOENT) => Ok(false),
        Err(errno) => Err(Error::os(errno, "connect")),
    }
}
