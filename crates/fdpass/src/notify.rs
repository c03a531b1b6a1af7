//! The service manager notification protocol (`sd_notify(3)`): one datagram
//! of `KEY=VALUE` lines sent to the `AF_UNIX` socket named by
//! `$NOTIFY_SOCKET`, with fds attached as `SCM_RIGHTS` for the fd store.
//!
//! Like `sd_notify`, this sends from a fresh close-on-exec datagram socket,
//! addressed with `sendmsg`'s `msg_name` (no `connect`), never raising
//! SIGPIPE. Credentials: the manager turns `SO_PASSCRED` on, so the kernel
//! attaches this process's pid, uid and gid to every datagram by itself;
//! `sd_notify` adds an explicit `SCM_CREDENTIALS` message only when the real
//! and effective ids differ (so the manager sees the real ones, which the
//! kernel would not pick), and so does this module.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::socket::{self, ControlMessage, MsgFlags, UnixAddr};

use crate::error::{Error, Result, MAX_FDS_PER_MESSAGE};
use crate::socket::{new_socket, SocketType};

/// Where `$NOTIFY_SOCKET` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAddress {
    /// A socket file (the value starts with `/`).
    Path(Vec<u8>),
    /// A Linux abstract name (the value starts with `@`, which stands for the
    /// leading NUL byte and is not part of the name).
    Abstract(Vec<u8>),
}

impl NotifyAddress {
    /// Parses the value of `$NOTIFY_SOCKET`. Other forms (`vsock:` of
    /// systemd 254 and later, relative paths) are refused with a clear error.
    pub fn parse(value: &[u8]) -> Result<Self> {
        match value.first() {
            Some(b'/') => Ok(NotifyAddress::Path(value.to_vec())),
            Some(b'@') if value.len() > 1 => Ok(NotifyAddress::Abstract(value[1..].to_vec())),
            _ => Err(Error::InvalidArgument {
                reason: format!(
                    "NOTIFY_SOCKET={:?} is not supported: fdpass sends to an absolute socket path \
                     or an '@' abstract name",
                    String::from_utf8_lossy(value)
                ),
            }),
        }
    }

    fn unix_addr(&self) -> Result<UnixAddr> {
        match self {
            NotifyAddress::Path(path) => {
                UnixAddr::new(std::ffi::OsStr::from_bytes(path)).map_err(|e| Error::os(e, "sendmsg"))
            }
            #[cfg(target_os = "linux")]
            NotifyAddress::Abstract(name) => {
                UnixAddr::new_abstract(name).map_err(|e| Error::os(e, "sendmsg"))
            }
            #[cfg(not(target_os = "linux"))]
            NotifyAddress::Abstract(_) => Err(Error::Unsupported {
                reason: "abstract socket names exist on Linux only",
                syscall: "sendmsg",
                errno: nix::errno::Errno::EAFNOSUPPORT,
            }),
        }
    }
}

/// Sends `state` (newline-separated `KEY=VALUE` assignments) and `fds` to the
/// service manager at `address`, in one datagram. The fds stay open and owned
/// by the caller: the manager gets its own copies.
pub fn notify(address: &NotifyAddress, state: &[u8], fds: &[RawFd]) -> Result<()> {
    if state.is_empty() {
        return Err(Error::EmptyData);
    }
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(Error::TooManyFds { count: fds.len() });
    }
    let addr = address.unix_addr()?;
    let socket = new_socket(SocketType::Datagram)?;
    let iov = [std::io::IoSlice::new(state)];
    let mut cmsgs = Vec::with_capacity(2);
    if !fds.is_empty() {
        cmsgs.push(ControlMessage::ScmRights(fds));
    }
    #[cfg(target_os = "linux")]
    let credentials = nix::sys::socket::UnixCredentials::new();
    #[cfg(target_os = "linux")]
    if ids_differ() {
        cmsgs.push(ControlMessage::ScmCredentials(&credentials));
    }
    socket::sendmsg(socket.as_raw_fd(), &iov, &cmsgs, send_flags(), Some(&addr))
        .map(drop)
        .map_err(|e| Error::os(e, "sendmsg"))
}

/// Whether the real and effective user or group ids differ (a set-id
/// program), the case where `sd_notify` sends its credentials explicitly.
#[cfg(target_os = "linux")]
fn ids_differ() -> bool {
    // SAFETY: these calls only read the process's ids and cannot fail.
    unsafe { libc::getuid() != libc::geteuid() || libc::getgid() != libc::getegid() }
}

#[cfg(target_os = "linux")]
fn send_flags() -> MsgFlags {
    MsgFlags::MSG_NOSIGNAL
}

#[cfg(not(target_os = "linux"))]
fn send_flags() -> MsgFlags {
    // The socket got SO_NOSIGPIPE when it was made.
    MsgFlags::empty()
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;

    #[test]
    fn parses_paths_and_abstract_names() {
        assert_eq!(
            NotifyAddress::parse(b"/run/x").expect("path"),
            NotifyAddress::Path(b"/run/x".to_vec())
        );
        assert_eq!(
            NotifyAddress::parse(b"@name").expect("abstract"),
            NotifyAddress::Abstract(b"name".to_vec())
        );
        for bad in [&b""[..], b"@", b"relative", b"vsock:2:1234"] {
            assert!(matches!(
                NotifyAddress::parse(bad),
                Err(Error::InvalidArgument { .. })
            ));
        }
    }

    #[test]
    fn sends_one_datagram() {
        let path = std::env::temp_dir().join(format!("fdpass-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).expect("bind");
        let address = NotifyAddress::Path(path.as_os_str().as_bytes().to_vec());
        notify(&address, b"READY=1\nSTATUS=up", &[]).expect("notify");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
        assert!(matches!(notify(&address, b"", &[]), Err(Error::EmptyData)));
        std::fs::remove_file(&path).expect("unlink");
        let err = notify(&address, b"READY=1", &[]).expect_err("nobody listens");
        assert_eq!(err.code(), "ENOENT");
    }
}
