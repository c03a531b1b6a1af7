//! Creating and inspecting Unix domain sockets.
//!
//! Every socket made here is close-on-exec (atomically on Linux with
//! `SOCK_CLOEXEC`, with `fcntl` right after creation on macOS, which has no such
//! flag) and never raises SIGPIPE (`MSG_NOSIGNAL` per send on Linux,
//! `SO_NOSIGPIPE` per socket on macOS).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};

use crate::error::{Error, Result};

/// The kind of a Unix domain socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// `SOCK_STREAM`: a byte stream; portable; needs framing to keep messages apart.
    Stream,
    /// `SOCK_SEQPACKET`: connected, keeps message boundaries (Linux only).
    SeqPacket,
    /// `SOCK_DGRAM`: datagrams, keeps message boundaries.
    Datagram,
}

impl SocketType {
    /// The name used by the JavaScript API.
    pub fn name(self) -> &'static str {
        match self {
            SocketType::Stream => "stream",
            SocketType::SeqPacket => "seqpacket",
            SocketType::Datagram => "dgram",
        }
    }

    /// Parses the name used by the JavaScript API.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "stream" => Ok(SocketType::Stream),
            "seqpacket" => Ok(SocketType::SeqPacket),
            "dgram" => Ok(SocketType::Datagram),
            other => Err(Error::InvalidArgument {
                reason: format!("unknown socket type {other:?}: use 'stream', 'seqpacket' or 'dgram'"),
            }),
        }
    }

    /// Whether the kernel keeps message boundaries for this type.
    pub fn keeps_boundaries(self) -> bool {
        !matches!(self, SocketType::Stream)
    }

    pub(crate) fn sock_type(self) -> SockType {
        match self {
            SocketType::Stream => SockType::Stream,
            SocketType::SeqPacket => SockType::SeqPacket,
            SocketType::Datagram => SockType::Datagram,
        }
    }

    fn from_raw(raw: i32) -> Option<Self> {
        match raw {
            libc::SOCK_STREAM => Some(SocketType::Stream),
            libc::SOCK_SEQPACKET => Some(SocketType::SeqPacket),
            libc::SOCK_DGRAM => Some(SocketType::Datagram),
            _ => None,
        }
    }
}

/// Flags for new sockets: close-on-exec where the kernel can set it atomically.
#[cfg(target_os = "linux")]
pub(crate) const NEW_SOCKET_FLAGS: SockFlag = SockFlag::SOCK_CLOEXEC;
#[cfg(not(target_os = "linux"))]
pub(crate) const NEW_SOCKET_FLAGS: SockFlag = SockFlag::empty();

/// Creates a connected pair of `AF_UNIX` sockets of `kind`, both close-on-exec
/// and blocking.
pub fn socket_pair(kind: SocketType) -> Result<(OwnedFd, OwnedFd)> {
    let (a, b) = socket::socketpair(AddressFamily::Unix, kind.sock_type(), None, NEW_SOCKET_FLAGS)
        .map_err(|errno| creation_error(errno, kind, "socketpair"))?;
    prepare_new_socket(&a)?;
    prepare_new_socket(&b)?;
    Ok((a, b))
}

/// Creates an unconnected `AF_UNIX` socket of `kind`, close-on-exec.
pub fn new_socket(kind: SocketType) -> Result<OwnedFd> {
    let fd = socket::socket(AddressFamily::Unix, kind.sock_type(), NEW_SOCKET_FLAGS, None)
        .map_err(|errno| creation_error(errno, kind, "socket"))?;
    prepare_new_socket(&fd)?;
    Ok(fd)
}

fn creation_error(errno: Errno, kind: SocketType, syscall: &'static str) -> Error {
    if kind == SocketType::SeqPacket
        && matches!(
            errno,
            Errno::EPROTONOSUPPORT | Errno::ESOCKTNOSUPPORT | Errno::EPROTOTYPE
        )
    {
        return Error::Unsupported {
            reason: "this platform has no SOCK_SEQPACKET Unix domain sockets (macOS has none): \
                     use 'stream', which fdpass frames into messages",
            syscall,
            errno,
        };
    }
    Error::os(errno, syscall)
}

/// Finishes a socket this process just created: close-on-exec and no SIGPIPE
/// where the platform could not do it at creation.
#[cfg(target_os = "linux")]
pub(crate) fn prepare_new_socket(_fd: &OwnedFd) -> Result<()> {
    Ok(())
}

/// Finishes a socket this process just created: close-on-exec and no SIGPIPE
/// where the platform could not do it at creation.
#[cfg(not(target_os = "linux"))]
pub(crate) fn prepare_new_socket(fd: &OwnedFd) -> Result<()> {
    use std::os::fd::AsFd;
    crate::fd::set_cloexec(fd.as_raw_fd())?;
    disable_sigpipe(fd.as_fd())
}

/// Makes sends on `fd` never raise SIGPIPE. Linux does this per send with
/// `MSG_NOSIGNAL`, so there is nothing to do there.
#[cfg(target_os = "linux")]
pub fn disable_sigpipe(_fd: BorrowedFd<'_>) -> Result<()> {
    Ok(())
}

/// Makes sends on `fd` never raise SIGPIPE (`SO_NOSIGPIPE`).
#[cfg(not(target_os = "linux"))]
pub fn disable_sigpipe(fd: BorrowedFd<'_>) -> Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Errno::result(r).map(drop).map_err(|e| Error::os(e, "setsockopt"))
}

/// The address family of a socket (`AF_UNIX`, `AF_INET`, ...).
#[cfg(target_os = "linux")]
pub fn address_family(fd: BorrowedFd<'_>) -> Result<i32> {
    // nix has no SO_DOMAIN option, so ask libc directly.
    let mut family: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into a live c_int.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut family as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    Errno::result(r).map_err(|e| Error::os(e, "getsockopt"))?;
    Ok(family)
}

/// The address family of a socket (`AF_UNIX`, `AF_INET`, ...). macOS has no
/// `SO_DOMAIN`: read it from the socket's own address.
#[cfg(not(target_os = "linux"))]
pub fn address_family(fd: BorrowedFd<'_>) -> Result<i32> {
    // SAFETY: sockaddr_storage is plain data; getsockname writes at most `len` bytes.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` and `len` are live locals; `len` says how much of `addr`
    // getsockname may write, and the fd is borrowed for the call.
    let r = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    Errno::result(r).map_err(|e| Error::os(e, "getsockname"))?;
    Ok(addr.ss_family as i32)
}

/// Checks that `fd` is an `AF_UNIX` socket; anything else cannot carry fds, and
/// Linux would silently drop them on an `AF_INET` socket.
pub fn ensure_unix(fd: BorrowedFd<'_>) -> Result<()> {
    let family = address_family(fd)?;
    if family == libc::AF_UNIX {
        Ok(())
    } else {
        Err(Error::NotUnixSocket { family })
    }
}

/// The type of a socket (`SO_TYPE`).
pub fn socket_type(fd: BorrowedFd<'_>) -> Result<SocketType> {
    let raw =
        socket::getsockopt(&fd, socket::sockopt::SockType).map_err(|e| Error::os(e, "getsockopt"))? as i32;
    SocketType::from_raw(raw).ok_or_else(|| Error::InvalidArgument {
        reason: format!("unsupported socket type {raw}: use a stream, seqpacket or dgram socket"),
    })
}
