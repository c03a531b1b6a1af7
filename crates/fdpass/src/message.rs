//! Sending and receiving one message with fds attached (`sendmsg`/`recvmsg`
//! with one `SCM_RIGHTS` control message).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, MsgFlags};

use crate::cmsg::{control_messages, ControlBuffer};
use crate::error::{Error, Result, MAX_FDS_PER_MESSAGE};
use crate::socket::ensure_unix;

/// Flags of every send: never raise SIGPIPE. macOS 11+ honours MSG_NOSIGNAL
/// per call too; older macOS relies on the SO_NOSIGPIPE set on our sockets.
fn send_flags() -> MsgFlags {
    MsgFlags::from_bits_retain(libc::MSG_NOSIGNAL)
}

/// Flags of every receive: received fds are close-on-exec atomically on Linux.
/// macOS has no such flag; [`recv_fds`] sets FD_CLOEXEC right after recvmsg.
#[cfg(target_os = "linux")]
fn recv_flags() -> MsgFlags {
    MsgFlags::MSG_CMSG_CLOEXEC
}
#[cfg(not(target_os = "linux"))]
fn recv_flags() -> MsgFlags {
    MsgFlags::empty()
}

/// Checks what a send may carry, before any syscall.
pub fn check_send(data_len: usize, fd_count: usize) -> Result<()> {
    if fd_count > MAX_FDS_PER_MESSAGE {
        return Err(Error::TooManyFds { count: fd_count });
    }
    if fd_count > 0 && data_len == 0 {
        return Err(Error::EmptyData);
    }
    Ok(())
}

/// Sends `data` with `fds` attached as one message, on an `AF_UNIX` socket.
///
/// Returns the bytes sent. On a stream socket a partial send is possible (the
/// socket is non-blocking, or a signal interrupted a large send): the fds went
/// with the first byte, so send the rest *without* fds.
pub fn send_fds(socket: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> Result<usize> {
    check_send(data.len(), fds.len())?;
    ensure_unix(socket)?;
    send_vectored(socket, &[IoSlice::new(data)], fds)
}

/// Sends the concatenation of `iov` with `fds` attached, on a socket the caller
/// has already checked to be `AF_UNIX`, with counts checked by [`check_send`].
pub fn send_vectored(socket: BorrowedFd<'_>, iov: &[IoSlice<'_>], fds: &[RawFd]) -> Result<usize> {
    let rights = [ControlMessage::ScmRights(fds)];
    // Exactly one SCM_RIGHTS message, and none at all without fds: an empty one
    // makes the receiver's recvmsg fail with ENOMEM on macOS.
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), iov, cmsgs, send_flags(), None) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Error::os(normalize_send_errno(errno), "sendmsg")),
            Ok(n) => return Ok(n),
        }
    }
}

/// macOS reports a full buffer as ENOBUFS and a closing peer as EPROTOTYPE;
/// callers see what Linux and libuv say: EAGAIN and ECONNRESET.
fn normalize_send_errno(errno: Errno) -> Errno {
    if cfg!(target_vendor = "apple") {
        match errno {
            Errno::ENOBUFS => return Errno::EAGAIN,
            Errno::EPROTOTYPE => return Errno::ECONNRESET,
            _ => {}
        }
    }
    errno
}

/// What one receive brought.
#[derive(Debug)]
pub struct Received {
    /// Bytes written into the buffer. 0 with no fds is end of stream on a
    /// stream socket (or an empty datagram).
    pub len: usize,
    /// The fds that came with the message, in order, owned by the caller.
    pub fds: Vec<OwnedFd>,
}

/// Receives one message (one recvmsg) into `buf` with the fds that came with it.
///
/// The control buffer always has room for the kernel's maximum number of fds,
/// whatever `max_fds` is, so that nothing arrives that cannot be seen and
/// closed. If more than `max_fds` arrived, or the kernel truncated the control
/// data, every fd that arrived is closed and [`Error::FdsTruncated`] returned.
/// If a datagram or seqpacket message did not fit in `buf`, its fds are closed
/// and [`Error::MessageTruncated`] returned. EINTR is retried.
pub fn recv_fds(socket: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize) -> Result<Received> {
    let mut control = ControlBuffer::new();
    recv_fds_with(socket, buf, max_fds, &mut control)
}

/// [`recv_fds`] with a caller-provided control buffer, which is zeroed here.
pub fn recv_fds_with(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    control: &mut ControlBuffer,
) -> Result<Received> {
    control.0.fill(0);
    let max_bytes = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let (len, flags) = loop {
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut control.0), recv_flags()) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Error::os(errno, "recvmsg")),
            Ok(msg) => break (msg.bytes, msg.flags),
        }
    };
    let fds = take_fds(&control.0)?;
    if flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(Error::FdsTruncated {
            received: fds.len(),
            max_fds,
            kernel_truncated: true,
        });
    }
    if fds.len() > max_fds {
        return Err(Error::FdsTruncated {
            received: fds.len(),
            max_fds,
            kernel_truncated: false,
        });
    }
    if flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(Error::MessageTruncated { max_bytes });
    }
    Ok(Received { len, fds })
}

/// Takes ownership of every fd the kernel installed, as listed in `control`.
/// Fds in other control messages (a Linux pidfd) are closed at once.
fn take_fds(control: &[u8]) -> Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for cmsg in control_messages(control) {
        if !cmsg.carries_fds() {
            continue;
        }
        let is_rights = cmsg.kind == libc::SCM_RIGHTS;
        for raw in cmsg.fds() {
            // SAFETY: the kernel just installed this fd in our table for this
            // message; nothing else knows its number, so we are its only owner.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            if is_rights {
                fds.push(fd);
            }
        }
    }
    set_cloexec_after_receive(&fds)?;
    Ok(fds)
}

#[cfg(target_os = "linux")]
fn set_cloexec_after_receive(_fds: &[OwnedFd]) -> Result<()> {
    Ok(())
}

/// macOS has no MSG_CMSG_CLOEXEC: mark each received fd before anything else
/// can run in this thread.
#[cfg(not(target_os = "linux"))]
fn set_cloexec_after_receive(fds: &[OwnedFd]) -> Result<()> {
    for fd in fds {
        crate::fd::set_cloexec(fd.as_raw_fd())?;
    }
    Ok(())
}
