//! Half-closing a connected stream socket: the end of a byte stream that
//! carries fds (D-Bus, Wayland, X11), as `net.Socket#end()` does.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{shutdown, Shutdown};

use crate::{Error, Result};

/// Stops sending on `sock` (`shutdown(SHUT_WR)`): the peer reads the end of
/// the stream once it has read everything sent before, and this side may
/// still receive. The fd stays open; every process holding the socket sees
/// the shutdown, as the kernel applies it to the socket itself.
pub fn shutdown_write(sock: BorrowedFd<'_>) -> Result<()> {
    shutdown(sock.as_raw_fd(), Shutdown::Write).map_err(|e| Error::os(e, "shutdown"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{recv_fds, send_fds, socket_pair, SocketType};
    use std::os::fd::AsFd;

    #[test]
    fn the_peer_reads_the_end_and_can_still_reply() {
        let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
        send_fds(a.as_fd(), b"last", &[]).expect("send");
        shutdown_write(a.as_fd()).expect("shutdown");
        let mut buf = [0u8; 64];
        let first = recv_fds(b.as_fd(), &mut buf, 0).expect("recv");
        assert_eq!(&buf[..first.len], b"last");
        let end = recv_fds(b.as_fd(), &mut buf, 0).expect("recv at the end");
        assert_eq!(end.len, 0, "the end of the stream reads as 0 bytes");
        send_fds(b.as_fd(), b"reply", &[]).expect("the peer may still send");
        let reply = recv_fds(a.as_fd(), &mut buf, 0).expect("recv reply");
        assert_eq!(&buf[..reply.len], b"reply");
    }
}
