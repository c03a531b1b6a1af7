//! What a socket fd is: family, type, protocol, whether it listens, and its
//! local and peer addresses — so a process that received an fd can check it
//! before using it (a listener handed over by a service manager, a connection
//! handed over by a supervisor).
//!
//! Linux answers with `getsockopt` (`SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL`,
//! `SO_ACCEPTCONN`). macOS has none of `SO_DOMAIN`, `SO_PROTOCOL` or a
//! readable `SO_ACCEPTCONN` (its `getsockopt` refuses that option with
//! `ENOPROTOOPT`), so there the kernel's own record of the socket is read
//! with `proc_pidfdinfo(PROC_PIDFDSOCKETINFO)`: its `soi_family`,
//! `soi_protocol` and `soi_options`, where `SO_ACCEPTCONN` is the bit
//! `listen(2)` sets — the same source `lsof` uses.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::socket::{self, SockaddrLike, SockaddrStorage};

use crate::error::{Error, Result};

/// The address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `AF_UNIX`.
    Unix,
    /// `AF_INET`.
    Inet,
    /// `AF_INET6`.
    Inet6,
    /// Any other family; the raw number is in [`SocketInfo::family_number`].
    Other,
}

impl Family {
    fn from_raw(raw: i32) -> Self {
        match raw {
            libc::AF_UNIX => Family::Unix,
            libc::AF_INET => Family::Inet,
            libc::AF_INET6 => Family::Inet6,
            _ => Family::Other,
        }
    }

    /// The name used by the JavaScript API.
    pub fn name(self) -> &'static str {
        match self {
            Family::Unix => "unix",
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
            Family::Other => "other",
        }
    }
}

/// The name of a socket type (`SO_TYPE`) used by the JavaScript API.
pub fn type_name(raw: i32) -> &'static str {
    match raw {
        libc::SOCK_STREAM => "stream",
        libc::SOCK_DGRAM => "dgram",
        libc::SOCK_SEQPACKET => "seqpacket",
        libc::SOCK_RAW => "raw",
        _ => "other",
    }
}

/// One end's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix domain socket bound to a path in the file system.
    UnixPath(Vec<u8>),
    /// A Unix domain socket bound to a Linux abstract name (without its
    /// leading NUL byte).
    UnixAbstract(Vec<u8>),
    /// A Unix domain socket bound to nothing (a `socketpair` end, or an
    /// unbound client).
    UnixUnnamed,
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// An address of another family, not decoded.
    Other,
}

/// What [`socket_info`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    /// The address family.
    pub family: Family,
    /// The raw address family number (`AF_*`).
    pub family_number: i32,
    /// The raw socket type (`SOCK_*`); see [`type_name`].
    pub socket_type: i32,
    /// The protocol number (`IPPROTO_TCP` for TCP, 0 for Unix sockets).
    pub protocol: i32,
    /// Whether `listen(2)` was called on it: it accepts connections.
    pub listening: bool,
    /// The address it is bound to.
    pub local: Address,
    /// The address of the connected peer, `None` when not connected.
    pub peer: Option<Address>,
}

/// Describes the socket `fd`. An fd that is not open fails with `EBADF`, one
/// that is not a socket with `ENOTSOCK`, both from `getsockopt`, the first
/// syscall made.
pub fn socket_info(fd: BorrowedFd<'_>) -> Result<SocketInfo> {
    // SO_TYPE first on every platform: it answers EBADF / ENOTSOCK uniformly.
    let socket_type =
        socket::getsockopt(&fd, socket::sockopt::SockType).map_err(|e| Error::os(e, "getsockopt"))? as i32;
    let kernel = kernel_record(fd)?;
    let local =
        socket::getsockname::<SockaddrStorage>(fd.as_raw_fd()).map_err(|e| Error::os(e, "getsockname"))?;
    let peer = match socket::getpeername::<SockaddrStorage>(fd.as_raw_fd()) {
        Ok(addr) => Some(address(&addr)),
        Err(e) if not_connected(e) => None,
        Err(e) => return Err(Error::os(e, "getpeername")),
    };
    Ok(SocketInfo {
        family: Family::from_raw(kernel.family),
        family_number: kernel.family,
        socket_type,
        protocol: kernel.protocol,
        listening: kernel.listening,
        local: address(&local),
        peer,
    })
}

/// Whether a `getpeername` error just means "no peer": not connected, or (BSD
/// kernels) a connection already shut down.
fn not_connected(errno: Errno) -> bool {
    matches!(errno, Errno::ENOTCONN) || (cfg!(target_vendor = "apple") && errno == Errno::EINVAL)
}

fn address(addr: &SockaddrStorage) -> Address {
    if let Some(unix) = addr.as_unix_addr() {
        if let Some(path) = unix.path() {
            return Address::UnixPath(path.as_os_str().as_bytes().to_vec());
        }
        #[cfg(target_os = "linux")]
        if let Some(name) = unix.as_abstract() {
            return Address::UnixAbstract(name.to_vec());
        }
        return Address::UnixUnnamed;
    }
    if let Some(inet) = inet_address(addr) {
        return Address::Inet(inet);
    }
    // An AF_UNIX address of length 0 or just the family (an unbound socket)
    // may carry no recognisable family on some kernels.
    if addr.family().is_none() || addr.len() as usize <= std::mem::size_of::<libc::sa_family_t>() {
        return Address::UnixUnnamed;
    }
    Address::Other
}

/// Decodes an IPv4 or IPv6 address (nix decodes them only with its `net`
/// feature, which the rest of the crate does not need).
fn inet_address(addr: &SockaddrStorage) -> Option<SocketAddr> {
    let len = addr.len() as usize;
    match addr.family().map(|f| f as i32) {
        Some(libc::AF_INET) if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the storage holds an AF_INET address of at least
            // sizeof(sockaddr_in) bytes; read_unaligned copies plain integers.
            let sin = unsafe { std::ptr::read_unaligned(addr.as_ptr().cast::<libc::sockaddr_in>()) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        Some(libc::AF_INET6) if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for an AF_INET6 address.
            let sin6 = unsafe { std::ptr::read_unaligned(addr.as_ptr().cast::<libc::sockaddr_in6>()) };
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Family, protocol and listening state, as the kernel records them.
struct KernelRecord {
    family: i32,
    protocol: i32,
    listening: bool,
}

#[cfg(target_os = "linux")]
fn kernel_record(fd: BorrowedFd<'_>) -> Result<KernelRecord> {
    Ok(KernelRecord {
        family: int_option(fd, libc::SO_DOMAIN)?,
        protocol: int_option(fd, libc::SO_PROTOCOL)?,
        listening: socket::getsockopt(&fd, socket::sockopt::AcceptConn)
            .map_err(|e| Error::os(e, "getsockopt"))?,
    })
}

/// A `SOL_SOCKET` option whose value is an int (nix has no `SO_DOMAIN` or
/// `SO_PROTOCOL`).
#[cfg(target_os = "linux")]
fn int_option(fd: BorrowedFd<'_>, option: libc::c_int) -> Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into a live c_int.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    Errno::result(r).map_err(|e| Error::os(e, "getsockopt"))?;
    Ok(value)
}

/// `PROC_PIDFDSOCKETINFO` of `<sys/proc_info.h>`.
#[cfg(target_vendor = "apple")]
const PROC_PIDFDSOCKETINFO: libc::c_int = 3;

/// The leading fields of `struct socket_fdinfo` (`<sys/proc_info.h>`), up to
/// the ones read here. The fields before them are kept opaque at their exact
/// sizes: `struct proc_fileinfo` is 24 bytes, `struct vinfo_stat` 136.
#[cfg(target_vendor = "apple")]
#[repr(C)]
#[derive(Clone, Copy)]
struct SocketFdInfoHead {
    pfi: [u64; 3],
    soi_stat: [u64; 17],
    soi_so: u64,
    soi_pcb: u64,
    soi_type: libc::c_int,
    soi_protocol: libc::c_int,
    soi_family: libc::c_int,
    soi_options: libc::c_short,
}

/// `struct socket_fdinfo` is 792 bytes; the kernel refuses a smaller buffer.
#[cfg(target_vendor = "apple")]
const SOCKET_FDINFO_SIZE: usize = 792;

/// A buffer the size of `struct socket_fdinfo`, aligned like it, whose head
/// can be read as [`SocketFdInfoHead`].
#[cfg(target_vendor = "apple")]
#[repr(C)]
union SocketFdInfo {
    head: SocketFdInfoHead,
    bytes: [u64; SOCKET_FDINFO_SIZE / 8],
}

#[cfg(target_vendor = "apple")]
const _: () = {
    assert!(std::mem::size_of::<SocketFdInfo>() == SOCKET_FDINFO_SIZE);
    assert!(std::mem::offset_of!(SocketFdInfoHead, soi_type) == 24 + 136 + 16);
    assert!(std::mem::offset_of!(SocketFdInfoHead, soi_options) == 24 + 136 + 16 + 12);
};

#[cfg(target_vendor = "apple")]
fn kernel_record(fd: BorrowedFd<'_>) -> Result<KernelRecord> {
    let mut info = SocketFdInfo {
        bytes: [0; SOCKET_FDINFO_SIZE / 8],
    };
    // SAFETY: `info` is a live, writable buffer of SOCKET_FDINFO_SIZE bytes,
    // the size passed; proc_pidfdinfo writes at most that many bytes.
    let written = unsafe {
        libc::proc_pidfdinfo(
            libc::getpid(),
            fd.as_raw_fd(),
            PROC_PIDFDSOCKETINFO,
            (&mut info as *mut SocketFdInfo).cast(),
            SOCKET_FDINFO_SIZE as libc::c_int,
        )
    };
    if written <= 0 {
        return Err(Error::os(Errno::last(), "proc_pidfdinfo"));
    }
    if (written as usize) < std::mem::size_of::<SocketFdInfoHead>() {
        return Err(Error::os(Errno::EIO, "proc_pidfdinfo"));
    }
    // SAFETY: every bit pattern is a valid SocketFdInfoHead (plain integers),
    // and the kernel filled at least its size.
    let head = unsafe { info.head };
    Ok(KernelRecord {
        family: head.soi_family,
        protocol: head.soi_protocol,
        listening: (head.soi_options as libc::c_int) & libc::SO_ACCEPTCONN != 0,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};

    use super::*;

    #[test]
    fn tcp_listener_and_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let info = socket_info(listener.as_fd()).expect("info");
        assert_eq!(info.family, Family::Inet);
        assert_eq!(type_name(info.socket_type), "stream");
        assert_eq!(info.protocol, libc::IPPROTO_TCP);
        assert!(info.listening);
        assert_eq!(info.local, Address::Inet(([127, 0, 0, 1], port).into()));
        assert_eq!(info.peer, None);

        let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let info = socket_info(client.as_fd()).expect("info");
        assert!(!info.listening);
        assert_eq!(info.peer, Some(Address::Inet(([127, 0, 0, 1], port).into())));
    }

    #[test]
    fn udp_and_unix() {
        let udp = UdpSocket::bind("[::1]:0").expect("bind");
        let info = socket_info(udp.as_fd()).expect("info");
        assert_eq!(info.family, Family::Inet6);
        assert_eq!(type_name(info.socket_type), "dgram");
        assert_eq!(info.protocol, libc::IPPROTO_UDP);
        assert!(!info.listening);

        let dir = std::env::temp_dir().join(format!("fdpass-info-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = UnixListener::bind(&dir).expect("bind");
        let info = socket_info(listener.as_fd()).expect("info");
        assert_eq!(info.family, Family::Unix);
        assert!(info.listening);
        assert_eq!(info.local, Address::UnixPath(dir.as_os_str().as_bytes().to_vec()));
        let client = UnixStream::connect(&dir).expect("connect");
        let info = socket_info(client.as_fd()).expect("info");
        assert_eq!(info.local, Address::UnixUnnamed);
        assert_eq!(
            info.peer,
            Some(Address::UnixPath(dir.as_os_str().as_bytes().to_vec()))
        );
        std::fs::remove_file(&dir).expect("unlink");

        let (a, _b) = UnixDatagram::pair().expect("pair");
        let info = socket_info(a.as_fd()).expect("info");
        assert_eq!(type_name(info.socket_type), "dgram");
        assert_eq!(info.local, Address::UnixUnnamed);
        assert_eq!(info.peer, Some(Address::UnixUnnamed));
    }

    #[test]
    fn not_a_socket() {
        let file = std::fs::File::open("/dev/null").expect("open");
        let err = socket_info(file.as_fd()).expect_err("not a socket");
        assert_eq!(err.code(), "ENOTSOCK");
        assert_eq!(err.syscall(), Some("getsockopt"));
    }
}
