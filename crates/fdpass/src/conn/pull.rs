//! Reads the reader pulls itself, into memory it owns: how a byte stream
//! reads without copies in between, as Node's own sockets and C read.
//!
//! A connection in this mode (unframed streams only) reads nothing when its
//! watcher reports input: [`Connection::read`] reports [`Event::Readable`]
//! instead, and the reader calls [`Connection::read_into`], one `recvmsg`
//! straight into its own buffer, until the read would block or it has
//! enough. The limits are those of the batched unframed read: at most
//! `max_fds` fds per read (more, or control data the kernel truncated, fail
//! the read and close every fd that came), close-on-exec, non-blocking per
//! call. The reader's room stays as it set it: a reader that stops before
//! the socket runs dry sets it to 0 (or the watcher reports input again).

use std::os::fd::{AsFd, OwnedFd};

use super::{closed_error, Connection, Event};
use crate::error::Result;
use crate::message::{recv_fds_append_waiting, Wait};
use crate::socket::SocketType;

/// What one pulled read brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRead {
    /// This many bytes (the fds that came with them were appended). 0 bytes
    /// with fds is possible where a kernel delivers fds without data.
    Read(usize),
    /// The peer closed its side: nothing more will come.
    End,
    /// Nothing to read now.
    WouldBlock,
}

impl Connection {
    /// Makes the reader pull its reads ([`read_into`](Self::read_into)) when
    /// [`Event::Readable`] says there is input, instead of the connection
    /// reading batches itself. Unframed stream connections only: returns
    /// whether the mode is now on.
    pub fn set_pull_reads(&mut self, on: bool) -> bool {
        self.pull =
            on && self.config.kind == SocketType::Stream && !self.config.framing && !self.config.listening;
        self.pull
    }

    /// Whether the reader pulls its reads (see [`set_pull_reads`](Self::set_pull_reads)).
    pub fn pulls_reads(&self) -> bool {
        self.pull
    }

    /// The event a watcher's readiness makes in pull mode: nothing once the
    /// stream ended or the connection closed.
    pub(super) fn readable_event(&self) -> Vec<Event> {
        if self.fd.is_none() || self.eof {
            return Vec::new();
        }
        vec![Event::Readable]
    }

    /// One non-blocking `recvmsg` into `buf`, its fds appended to `fds`
    /// (close-on-exec, at most the connection's `max_fds`; on an error none
    /// is appended and every fd that came is closed). Once it has reported
    /// [`PullRead::End`] it reports it again without reading. Errors are the
    /// socket's (ECONNRESET...) or [`Error::FdsTruncated`](crate::Error):
    /// the stream is unusable then, as some fds are lost.
    pub fn read_into(&mut self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> Result<PullRead> {
        let Some(sock) = self.fd.as_ref() else {
            return Err(closed_error());
        };
        if self.eof {
            return Ok(PullRead::End);
        }
        let first = fds.len();
        match recv_fds_append_waiting(
            sock.as_fd(),
            buf,
            self.config.max_fds,
            &mut self.control,
            fds,
            Wait::Never,
        ) {
            // An empty buffer reads 0 bytes too: only a real read says the end.
            Ok(0) if fds.len() == first && !buf.is_empty() => {
                self.eof = true;
                Ok(PullRead::End)
            }
            Ok(len) => Ok(PullRead::Read(len)),
            Err(e) if e.would_block() => Ok(PullRead::WouldBlock),
            Err(e) => Err(e),
        }
    }
}
