//! Sending and receiving one message with fds attached (`sendmsg`/`recvmsg`
//! with one `SCM_RIGHTS` control message).

use std::io::{IoSlice, IoSliceMut};
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, MsgFlags};

use crate::cmsg::ControlBuffer;
use crate::error::{Error, Result, MAX_FDS_PER_MESSAGE};
use crate::socket::ensure_unix;

/// Flags of every send: never raise SIGPIPE. macOS 11+ honours MSG_NOSIGNAL
/// per call too; older macOS relies on the SO_NOSIGPIPE set on our sockets.
fn send_flags() -> MsgFlags {
    MsgFlags::from_bits_retain(libc::MSG_NOSIGNAL)
}

/// Whether one send or receive may block, chosen per call.
///
/// `O_NONBLOCK` is a file status flag: it lives on the open file description,
/// which every process holding the socket shares. Setting it would make a
/// blocking peer holding the same socket (a C, Python or Go program given
/// the other end of a pair, or this very end) fail with EAGAIN. So fdpass
/// never sets it on a socket someone else may hold, and asks for
/// non-blocking behaviour per call instead: `MSG_DONTWAIT`, which Linux and
/// macOS both honour on `sendmsg` and `recvmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// As the socket's own mode says (blocking unless `O_NONBLOCK` is set).
    AsSocket,
    /// Never block: EAGAIN instead (`MSG_DONTWAIT`), whatever the socket's mode.
    Never,
}

impl Wait {
    fn flags(self) -> MsgFlags {
        match self {
            Wait::AsSocket => MsgFlags::empty(),
            Wait::Never => MsgFlags::MSG_DONTWAIT,
        }
    }
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
    // Callers that own their socket check once instead: send_fds_on_unix.
    ensure_unix(socket)?;
    send_fds_on_unix(socket, data, fds)
}

/// [`send_fds`] on a socket known to be `AF_UNIX`: one the caller created, or
/// checked with [`ensure_unix`], and has owned ever since, so that its number
/// cannot have been closed and reused by another kind of socket.
pub fn send_fds_on_unix(socket: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> Result<usize> {
    check_send(data.len(), fds.len())?;
    send_vectored(socket, &[IoSlice::new(data)], fds)
}

/// Sends the concatenation of `iov` with `fds` attached, on a socket the caller
/// has already checked to be `AF_UNIX`, with counts checked by [`check_send`].
pub fn send_vectored(socket: BorrowedFd<'_>, iov: &[IoSlice<'_>], fds: &[RawFd]) -> Result<usize> {
    send_vectored_waiting(socket, iov, fds, Wait::AsSocket)
}

/// [`send_vectored`], blocking or not as `wait` says.
pub fn send_vectored_waiting(
    socket: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    fds: &[RawFd],
    wait: Wait,
) -> Result<usize> {
    let rights = [ControlMessage::ScmRights(fds)];
    // Exactly one SCM_RIGHTS message, and none at all without fds: an empty one
    // makes the receiver's recvmsg fail with ENOMEM on macOS.
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), iov, cmsgs, send_flags() | wait.flags(), None) {
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

/// [`recv_fds`] with a caller-provided control buffer, reused from one
/// receive to the next.
pub fn recv_fds_with(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    control: &mut ControlBuffer,
) -> Result<Received> {
    let mut fds = Vec::new();
    let len = recv_fds_append(socket, buf, max_fds, control, &mut fds)?;
    Ok(Received { len, fds })
}

/// [`recv_fds_with`] appending the fds that came with the message to `fds`
/// (after those it holds, in order) instead of returning a new vector: a
/// caller that reads many messages reuses one vector. Returns the bytes
/// written into `buf`. On any error `fds` is as it was.
pub fn recv_fds_append(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    control: &mut ControlBuffer,
    fds: &mut Vec<OwnedFd>,
) -> Result<usize> {
    recv_fds_append_waiting(socket, buf, max_fds, control, fds, Wait::AsSocket)
}

/// [`recv_fds_append`], blocking or not as `wait` says.
pub fn recv_fds_append_waiting(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    control: &mut ControlBuffer,
    fds: &mut Vec<OwnedFd>,
    wait: Wait,
) -> Result<usize> {
    let start = fds.len();
    receive(socket, buf, max_fds, control, &mut Appended { fds, start }, wait)
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
    let mut slots = Slots {
        slots: fds_out,
        kept: 0,
    };
    let len = receive(socket, buf, max_fds, control, &mut slots, Wait::AsSocket)?;
    Ok(ReceivedInto {
        len,
        fd_count: slots.kept,
    })
}

/// Where a receive puts the fds it keeps: the caller's fd slots, or a vector
/// of owned fds (filled as they come, so nothing is initialized in advance).
trait KeptFds {
    /// How many are kept so far.
    fn count(&self) -> usize;
    /// Makes room for `n` more (a hint).
    fn reserve(&mut self, n: usize);
    /// Keeps one fd.
    ///
    /// # Safety
    /// `fd` was just installed by the kernel for this receive, and nothing
    /// else owns it.
    unsafe fn keep(&mut self, fd: RawFd);
    /// Marks each kept fd close-on-exec (systems without MSG_CMSG_CLOEXEC).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    fn set_cloexec(&self) -> Result<()>;
    /// Closes every kept fd: the receive failed.
    fn close_kept(&mut self);
}

struct Slots<'a> {
    slots: &'a mut [RawFd],
    kept: usize,
}

impl KeptFds for Slots<'_> {
    fn count(&self) -> usize {
        self.kept
    }

    fn reserve(&mut self, _n: usize) {}

    unsafe fn keep(&mut self, fd: RawFd) {
        // receive() keeps at most max_fds, for which recv_fds_into checked room.
        self.slots[self.kept] = fd;
        self.kept += 1;
    }

    fn set_cloexec(&self) -> Result<()> {
        self.slots[..self.kept]
            .iter()
            .try_for_each(|&fd| crate::fd::set_cloexec(fd))
    }

    fn close_kept(&mut self) {
        for &fd in &self.slots[..self.kept] {
            // SAFETY: kept fds are the receive's own until it returns them.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        self.kept = 0;
    }
}

/// The fds of one receive, appended to a vector after the `start` it held.
struct Appended<'a> {
    fds: &'a mut Vec<OwnedFd>,
    start: usize,
}

impl KeptFds for Appended<'_> {
    fn count(&self) -> usize {
        self.fds.len() - self.start
    }

    fn reserve(&mut self, n: usize) {
        self.fds.reserve(n);
    }

    unsafe fn keep(&mut self, fd: RawFd) {
        // SAFETY: the caller hands over sole ownership of `fd`.
        self.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }

    fn set_cloexec(&self) -> Result<()> {
        self.fds[self.start..]
            .iter()
            .try_for_each(|fd| crate::fd::set_cloexec(fd.as_raw_fd()))
    }

    fn close_kept(&mut self) {
        self.fds.truncate(self.start);
    }
}

/// One recvmsg into `buf`, the fds kept in `kept`; the byte count. See
/// [`recv_fds`] for the checks: on error nothing stays in `kept`.
fn receive(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    control: &mut ControlBuffer,
    kept: &mut impl KeptFds,
    wait: Wait,
) -> Result<usize> {
    let max_bytes = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let (len, flags) = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(control.for_recvmsg()),
            recv_flags() | wait.flags(),
        ) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Error::os(errno, "recvmsg")),
            Ok(msg) => break (msg.bytes, msg.flags),
        }
    };
    // Every fd the kernel installed is either kept or closed here;
    // `received` counts the SCM_RIGHTS ones.
    let mut received = 0;
    control.walk(|cmsg| {
        if !cmsg.carries_fds() {
            return;
        }
        let is_rights = cmsg.kind == libc::SCM_RIGHTS;
        if is_rights {
            kept.reserve(cmsg.data.len() / size_of::<RawFd>());
        }
        for raw in cmsg.fds() {
            if is_rights {
                received += 1;
                if kept.count() < max_fds {
                    // SAFETY: the kernel just installed this fd for this
                    // message and nothing else knows its number.
                    unsafe { kept.keep(raw) };
                    continue;
                }
            }
            // SAFETY: as above; not kept, so closed at once.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    });
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
        set_cloexec_after_receive(kept).err()
    };
    if let Some(error) = error {
        kept.close_kept();
        return Err(error);
    }
    Ok(len)
}

#[cfg(target_os = "linux")]
fn set_cloexec_after_receive(_kept: &impl KeptFds) -> Result<()> {
    Ok(())
}

/// macOS has no MSG_CMSG_CLOEXEC: mark each received fd before anything else
/// can run in this thread.
#[cfg(not(target_os = "linux"))]
fn set_cloexec_after_receive(kept: &impl KeptFds) -> Result<()> {
    kept.set_cloexec()
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
        // Seqpacket where it exists (macOS has none for AF_UNIX): both keep boundaries.
        let kind = if cfg!(target_os = "linux") {
            SocketType::SeqPacket
        } else {
            SocketType::Datagram
        };
        let (a, b) = socket_pair(kind).expect("pair");
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
        crate::fd::close_fds(&received).expect("close");
        // Closing them again: every one is tried, the first EBADF reported.
        assert_eq!(
            crate::fd::close_fds(&received),
            Err(Error::os(Errno::EBADF, "close"))
        );

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

        // Appending: the fds go after those the vector holds, in order...
        let held = crate::dup_cloexec(a.as_fd()).expect("dup");
        let held_raw = held.as_raw_fd();
        let mut fds = vec![held];
        send_vectored(a.as_fd(), &[IoSlice::new(b"ab")], &[me, me]).expect("send");
        let len = recv_fds_append(b.as_fd(), &mut buf, 2, &mut control, &mut fds).expect("recv");
        assert_eq!(len, 2);
        assert_eq!(fds.len(), 3);
        assert_eq!(fds[0].as_raw_fd(), held_raw);
        let appended: Vec<RawFd> = fds[1..].iter().map(AsRawFd::as_raw_fd).collect();
        assert!(appended
            .iter()
            .all(|&fd| fd != me && fd != held_raw && fd_is_open(fd)));
        fds.truncate(1);
        // ...and on an error the vector is as it was, the new fds closed.
        send_vectored(a.as_fd(), &[IoSlice::new(b"m")], &[me, me, me]).expect("send");
        let err = recv_fds_append(b.as_fd(), &mut buf, 2, &mut control, &mut fds).expect_err("too many");
        assert!(matches!(err, Error::FdsTruncated { received: 3, .. }));
        assert_eq!(fds.len(), 1);
        assert_eq!(fds[0].as_raw_fd(), held_raw);
        for &fd in &appended {
            assert!(!fd_is_open(fd), "fd {fd} left open");
        }
    }
}
