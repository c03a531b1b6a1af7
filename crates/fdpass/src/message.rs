//! Sending and receiving one message with fds attached (`sendmsg`/`recvmsg`
//! with one `SCM_RIGHTS` control message).

use std::io::{IoSlice, IoSliceMut};
use std::mem::size_of;
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
    // One getsockopt(SO_DOMAIN) per send, deliberately not cached. A cache
    // keyed by fd number is unsound: the caller (or Node's fs.closeSync, a
    // libuv thread pool close, another addon) can close the number between
    // two sends and a TCP socket can take it; Linux then accepts SCM_RIGHTS on
    // that socket, drops the fds and reports success. fdpass sees neither the
    // close nor the reuse, and nothing in user space can tell whether a
    // number still names the same open file without a syscall (fstat, fcntl,
    // kcmp all are one). sendmsg cannot do the check either: inet sockets
    // accept and ignore SCM_RIGHTS, and no flag or control message that keeps
    // this a single plain SCM_RIGHTS message fails there and works on AF_UNIX.
    // `__test__/lean.spec.ts` reuses a checked number for a TCP socket.
    ensure_unix(socket)?;
    send_vectored(socket, &[IoSlice::new(data)], fds)
}

/// Sends the concatenation of `iov` with `fds` attached, on a socket the caller
/// has already checked to be `AF_UNIX`, with counts checked by [`check_send`].
pub fn send_vectored(socket: BorrowedFd<'_>, iov: &[IoSlice<'_>], fds: &[RawFd]) -> Result<usize> {
    if fds.len() > MAX_FDS_PER_MESSAGE {
        // Unchecked counts (a caller that skipped check_send): let the kernel
        // judge them as before, with a control buffer on the heap.
        let rights = [ControlMessage::ScmRights(fds)];
        loop {
            match sendmsg::<()>(socket.as_raw_fd(), iov, &rights, send_flags(), None) {
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(Error::os(normalize_send_errno(errno), "sendmsg")),
                Ok(n) => return Ok(n),
            }
        }
    }
    let mut control = SendControl::new();
    loop {
        match send_with_rights(socket, iov, fds, &mut control) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Error::os(normalize_send_errno(errno), "sendmsg")),
            Ok(n) => return Ok(n),
        }
    }
}

/// Room for one `SCM_RIGHTS` message carrying the most fds a send may carry.
// SAFETY: CMSG_SPACE only does arithmetic on its argument.
const SEND_CONTROL_LEN: usize =
    unsafe { libc::CMSG_SPACE((MAX_FDS_PER_MESSAGE * size_of::<libc::c_int>()) as u32) as usize };

/// The control buffer of one send, on the stack and aligned as a `cmsghdr`.
/// nix's `sendmsg` allocates one on the heap per call; this path allocates
/// nothing.
#[repr(C, align(8))]
struct SendControl([u8; SEND_CONTROL_LEN]);

impl SendControl {
    fn new() -> Self {
        SendControl([0; SEND_CONTROL_LEN])
    }
}

/// One `sendmsg` with exactly one `SCM_RIGHTS` control message holding `fds`,
/// and none at all without fds (an empty one makes the receiver's recvmsg fail
/// with ENOMEM on macOS), with `MSG_NOSIGNAL`: the message nix's
/// `ControlMessage::ScmRights` builds, without its heap buffer.
/// `fds.len()` must be at most [`MAX_FDS_PER_MESSAGE`].
fn send_with_rights(
    socket: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    fds: &[RawFd],
    control: &mut SendControl,
) -> std::result::Result<usize, Errno> {
    debug_assert!(fds.len() <= MAX_FDS_PER_MESSAGE);
    let payload_len = std::mem::size_of_val(fds);
    // SAFETY: msghdr is plain data (musl has padding fields), all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec on Unix; the kernel only
    // reads through this pointer.
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    if !fds.is_empty() {
        // SAFETY: arithmetic only.
        let space = unsafe { libc::CMSG_SPACE(payload_len as u32) } as usize;
        // Never more than SEND_CONTROL_LEN: fds.len() <= MAX_FDS_PER_MESSAGE.
        let buf = &mut control.0[..space];
        buf.fill(0);
        msg.msg_control = buf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` zeroed bytes aligned for a
        // cmsghdr, room for one header plus `payload_len` bytes of data
        // (CMSG_SPACE), so CMSG_FIRSTHDR is non-null and the header and the
        // fds written through CMSG_DATA stay inside the buffer.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&msg);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(payload_len as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(header), payload_len);
        }
    }
    // SAFETY: msg points at live iovecs and a live control buffer for the
    // duration of the call; sendmsg only reads them.
    let n = unsafe { sys_sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    Errno::result(n).map(|n| n as usize)
}

// sendmsg, recvmsg and close without glibc's cancellation-point wrappers. In
// a process with more than one thread (every Node.js process) glibc's wrapper
// switches asynchronous thread cancellation on and off around each call: two
// atomic operations, about 25 ns per call on the test machine, a third of the
// kernel's own cost of an idle second thread in the W1 benchmark. fdpass never
// cancels threads, and the raw syscall returns and sets errno alike. Linux
// only: macOS deprecates syscall(2).

/// `sendmsg(2)`, straight to the kernel on Linux.
///
/// # Safety
/// As `libc::sendmsg`: `msg` and what it points to must be valid for the call.
#[cfg(target_os = "linux")]
unsafe fn sys_sendmsg(fd: RawFd, msg: *const libc::msghdr, flags: libc::c_int) -> isize {
    libc::syscall(libc::SYS_sendmsg, fd as libc::c_long, msg, flags as libc::c_long) as isize
}
#[cfg(not(target_os = "linux"))]
unsafe fn sys_sendmsg(fd: RawFd, msg: *const libc::msghdr, flags: libc::c_int) -> isize {
    libc::sendmsg(fd, msg, flags)
}

/// `recvmsg(2)`, straight to the kernel on Linux.
///
/// # Safety
/// As `libc::recvmsg`: `msg` and what it points to must be valid for the call.
#[cfg(target_os = "linux")]
unsafe fn sys_recvmsg(fd: RawFd, msg: *mut libc::msghdr, flags: libc::c_int) -> isize {
    libc::syscall(libc::SYS_recvmsg, fd as libc::c_long, msg, flags as libc::c_long) as isize
}
#[cfg(not(target_os = "linux"))]
unsafe fn sys_recvmsg(fd: RawFd, msg: *mut libc::msghdr, flags: libc::c_int) -> isize {
    libc::recvmsg(fd, msg, flags)
}

/// `close(2)` of a plain fd number, straight to the kernel on Linux; returns
/// 0 or -1 with errno set, as `libc::close`.
///
/// # Safety
/// The caller hands over the fd: nothing may use the number afterwards.
#[cfg(target_os = "linux")]
pub unsafe fn sys_close(fd: RawFd) -> libc::c_int {
    libc::syscall(libc::SYS_close, fd as libc::c_long) as libc::c_int
}
/// `close(2)` of a plain fd number; returns 0 or -1 with errno set.
///
/// # Safety
/// The caller hands over the fd: nothing may use the number afterwards.
#[cfg(not(target_os = "linux"))]
pub unsafe fn sys_close(fd: RawFd) -> libc::c_int {
    libc::close(fd)
}

/// [`crate::close_fds`] through [`sys_close`]: closes every fd in `fds`, even
/// when some fail, and reports the first failure (EINTR is not one: Linux and
/// macOS release the fd even then).
pub fn close_all(fds: &[RawFd]) -> Result<()> {
    let mut first_error = None;
    for &fd in fds {
        // SAFETY: the caller hands over ownership of every fd in `fds`.
        let r = unsafe { sys_close(fd) };
        if r == -1 && first_error.is_none() {
            let errno = Errno::last();
            if errno != Errno::EINTR {
                first_error = Some(Error::os(errno, "close"));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
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

/// What [`recv_fds_into`] brought: the counts of what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedInto {
    /// Bytes written into the buffer. 0 with no fds is end of stream on a
    /// stream socket (or an empty datagram).
    pub len: usize,
    /// How many fds were written at the start of the fd slice; the caller
    /// owns them and must close them.
    pub fd_count: usize,
}

/// [`recv_fds_with`] without allocating: the fds that came with the message
/// are written, in order, at the start of `fds_out`, and the caller owns
/// them. Same checks and cleanup as [`recv_fds`]: on any error every fd that
/// arrived has been closed and nothing is written that the caller must close.
///
/// `fds_out` must have room for `max_fds` fds.
pub fn recv_fds_into(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    control: &mut ControlBuffer,
    fds_out: &mut [RawFd],
) -> Result<ReceivedInto> {
    if fds_out.len() < max_fds {
        return Err(Error::InvalidArgument {
            reason: format!("room for {} fds is less than maxFds ({max_fds})", fds_out.len()),
        });
    }
    control.0.fill(0);
    let max_bytes = buf.len();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let (len, flags) = loop {
        // SAFETY: msghdr is plain data (musl has padding fields), all-zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        // SAFETY: msg points at the live iovec over `buf` and at the live
        // control buffer, both writable for their full lengths.
        let n = unsafe { sys_recvmsg(socket.as_raw_fd(), &mut msg, recv_flags().bits()) };
        match Errno::result(n) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Error::os(errno, "recvmsg")),
            Ok(n) => break (n as usize, MsgFlags::from_bits_retain(msg.msg_flags)),
        }
    };
    // Every fd the kernel installed is either kept in `fds_out[..kept]` or
    // closed here; `received` counts the SCM_RIGHTS ones.
    let mut kept = 0;
    let mut received = 0;
    for cmsg in control_messages(&control.0) {
        if !cmsg.carries_fds() {
            continue;
        }
        let is_rights = cmsg.kind == libc::SCM_RIGHTS;
        for raw in cmsg.fds() {
            if is_rights {
                received += 1;
                if kept < max_fds {
                    fds_out[kept] = raw;
                    kept += 1;
                    continue;
                }
            }
            // SAFETY: the kernel just installed this fd for this message and
            // nothing else knows its number: we own it and close it at once.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
    let close_kept = |fds: &[RawFd]| {
        for &raw in fds {
            // SAFETY: as above, these fds are ours alone until returned.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    };
    let error = if flags.contains(MsgFlags::MSG_CTRUNC) {
        Some(Error::FdsTruncated {
            received,
            max_fds,
            kernel_truncated: true,
        })
    } else if received > max_fds {
        Some(Error::FdsTruncated {
            received,
            max_fds,
            kernel_truncated: false,
        })
    } else if flags.contains(MsgFlags::MSG_TRUNC) {
        Some(Error::MessageTruncated { max_bytes })
    } else {
        set_cloexec_after_receive_raw(&fds_out[..kept]).err()
    };
    if let Some(error) = error {
        close_kept(&fds_out[..kept]);
        return Err(error);
    }
    Ok(ReceivedInto { len, fd_count: kept })
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

#[cfg(target_os = "linux")]
fn set_cloexec_after_receive_raw(_fds: &[RawFd]) -> Result<()> {
    Ok(())
}

/// macOS has no MSG_CMSG_CLOEXEC: mark each received fd before anything else
/// can run in this thread.
#[cfg(not(target_os = "linux"))]
fn set_cloexec_after_receive_raw(fds: &[RawFd]) -> Result<()> {
    for &fd in fds {
        crate::fd::set_cloexec(fd)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::{socket_pair, SocketType};
    use std::os::fd::AsFd;

    fn fd_is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD on a plain number only reports whether it is open.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    // One test: the lib's other unit tests open no fds, so checking fd
    // numbers for reuse here cannot race with them.
    #[test]
    fn lean_send_and_receive_paths() {
        let (a, b) = socket_pair(SocketType::SeqPacket).expect("pair");
        let mut control = ControlBuffer::new();
        let mut buf = [0u8; 16];
        let mut out = [-1; 8];
        let me = a.as_raw_fd();

        // No fds: no control message at all, the receiver sees none.
        assert_eq!(
            send_vectored(a.as_fd(), &[IoSlice::new(b"no")], &[]).expect("send"),
            2
        );
        let got = recv_fds_into(b.as_fd(), &mut buf, 8, &mut control, &mut out).expect("recv");
        assert_eq!(got, ReceivedInto { len: 2, fd_count: 0 });

        // Three fds in order, each a new open fd.
        send_vectored(
            a.as_fd(),
            &[IoSlice::new(b"x"), IoSlice::new(b"yz")],
            &[me, me, me],
        )
        .expect("send");
        let got = recv_fds_into(b.as_fd(), &mut buf, 3, &mut control, &mut out).expect("recv");
        assert_eq!((got.len, got.fd_count), (3, 3));
        assert_eq!(&buf[..3], b"xyz");
        let received: Vec<RawFd> = out[..3].to_vec();
        for &fd in &received {
            assert!(fd != me && fd_is_open(fd));
        }
        close_all(&received).expect("close");
        // Closing them again: every one is tried, the first EBADF reported.
        assert_eq!(close_all(&received), Err(Error::os(Errno::EBADF, "close")));

        // More fds than max_fds: an error, and every fd that arrived closed
        // (the lowest free numbers are those just closed: they must be free).
        send_vectored(a.as_fd(), &[IoSlice::new(b"m")], &[me, me, me]).expect("send");
        let err = recv_fds_into(b.as_fd(), &mut buf, 2, &mut control, &mut out).expect_err("too many");
        assert!(matches!(
            err,
            Error::FdsTruncated {
                received: 3,
                max_fds: 2,
                kernel_truncated: false
            }
        ));
        for &fd in &received {
            assert!(!fd_is_open(fd), "fd {fd} left open");
        }

        // A message longer than the buffer: its fds closed too.
        send_vectored(a.as_fd(), &[IoSlice::new(&[7u8; 40])], &[me]).expect("send");
        let err = recv_fds_into(b.as_fd(), &mut buf, 8, &mut control, &mut out).expect_err("long");
        assert!(matches!(err, Error::MessageTruncated { max_bytes: 16 }));
        assert!(!fd_is_open(received[0]));

        // No room for max_fds: refused before any syscall.
        let err = recv_fds_into(b.as_fd(), &mut buf, 9, &mut control, &mut out).expect_err("room");
        assert!(matches!(err, Error::InvalidArgument { .. }));

        // Unchecked counts still reach the kernel, which refuses them.
        let many = vec![me; MAX_FDS_PER_MESSAGE + 1];
        let err = send_vectored(a.as_fd(), &[IoSlice::new(b"x")], &many).expect_err("254 fds");
        assert_eq!(err, Error::os(Errno::EINVAL, "sendmsg"));
    }
}
