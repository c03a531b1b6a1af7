//! A connection driven by an event loop: the state machine of a non-blocking
//! socket whose readiness someone else watches (Node's libuv loop in the
//! binding, a plain loop in the tests).
//!
//! Every operation tries the syscall first and reports what the caller must
//! wait for ([`Connection::interest`]) only after EAGAIN. Sends that do not go
//! out at once wait in a queue with duplicates of their fds
//! ([`write_queue`]); reads drain what is queued, up to the room the caller
//! gives, into one [`Batch`] ([`read`]); a listening socket's "messages" are
//! accepted connections ([`accept`]). What happened is told as [`Event`]s.
//!
//! The socket's own mode is never changed (O_NONBLOCK is shared with every
//! process holding the socket): each send and receive is non-blocking per
//! call (`MSG_DONTWAIT`).

mod accept;
mod batch;
mod datagram_scratch;
mod event;
mod pull;
mod read;
mod ready;
mod write_queue;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

pub use accept::accepted_meta;
pub use batch::{Batch, BATCH_BYTES};
pub use event::Event;
pub use pull::PullRead;

use crate::cmsg::ControlBuffer;
use crate::error::{Error, Result, MAX_FDS_PER_MESSAGE};
use crate::frame::FrameDecoder;
use crate::socket::SocketType;
use write_queue::WriteQueue;

/// How much one non-framed read or framed read step asks the kernel for.
pub const READ_CHUNK: usize = 64 * 1024;

/// How a connection reads and what it accepts.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The socket's type.
    pub kind: SocketType,
    /// Whether it is a listening socket (reads accept connections).
    pub listening: bool,
    /// Whether messages travel framed (stream sockets only; ignored otherwise).
    pub framing: bool,
    /// The largest message accepted, in bytes.
    pub max_bytes: usize,
    /// The most fds one message may bring (capped at [`MAX_FDS_PER_MESSAGE`]).
    pub max_fds: usize,
}

/// What the connection waits for, for its watcher to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    /// Reads are wanted and the stream has not ended.
    pub readable: bool,
    /// Sends wait in the queue.
    pub writable: bool,
}

/// A non-blocking connection (or listener) and everything in flight on it.
/// Dropping it closes the socket, queued fds and fds read but not handed
/// over.
pub struct Connection {
    fd: Option<OwnedFd>,
    config: Config,
    decoder: FrameDecoder<OwnedFd>,
    control: Box<ControlBuffer>,
    /// The fds of one framed read on their way into the decoder (kept, so
    /// that a read allocates nothing).
    received_fds: Vec<OwnedFd>,
    /// The vectors of the last batch, kept to be reused by the next one.
    spare_batch: Option<Batch>,
    writes: WriteQueue,
    /// How many more messages the reader wants; 0 stops reading.
    read_room: usize,
    /// How many more received fds the reader accepts before it takes some:
    /// a read stops once a batch holds this many.
    read_fd_room: usize,
    eof: bool,
    /// Whether the reader pulls its reads itself (see [`pull`]).
    pull: bool,
}

impl Connection {
    /// Adopts `fd` (also on failure: it is closed then), making sure a send
    /// on it never raises SIGPIPE. Its mode is left alone.
    pub fn new(fd: OwnedFd, mut config: Config) -> Result<Self> {
        crate::socket::disable_sigpipe(fd.as_fd())?;
        config.framing &= config.kind == SocketType::Stream;
        config.max_fds = config.max_fds.min(MAX_FDS_PER_MESSAGE);
        Ok(Connection {
            fd: Some(fd),
            decoder: FrameDecoder::new(config.max_bytes, config.max_fds),
            config,
            control: Box::new(ControlBuffer::new()),
            received_fds: Vec::new(),
            spare_batch: None,
            writes: WriteQueue::default(),
            read_room: 0,
            read_fd_room: 0,
            eof: false,
            pull: false,
        })
    }

    /// The socket, until [`close`](Self::close).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }

    /// The socket's fd number, or -1 once closed.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.fd.is_none()
    }

    /// Whether this is a listening socket.
    pub fn is_listening(&self) -> bool {
        self.config.listening
    }

    /// Bytes waiting in the send queue.
    pub fn queued_bytes(&self) -> usize {
        self.writes.bytes()
    }

    /// How many more messages (and fds) the reader wants read as they
    /// arrive (0 messages: stop reading).
    pub fn set_reading(&mut self, room: usize, fd_room: usize) {
        self.read_room = room;
        self.read_fd_room = fd_room;
    }

    /// The room set by [`set_reading`](Self::set_reading).
    pub fn reading(&self) -> (usize, usize) {
        (self.read_room, self.read_fd_room)
    }

    /// What the watcher should wait for now.
    pub fn interest(&self) -> Interest {
        if self.fd.is_none() {
            return Interest::default();
        }
        Interest {
            readable: self.read_room > 0 && !self.eof,
            writable: !self.writes.is_empty(),
        }
    }

    /// Sends `data` with `fds` (borrowed: duplicated if the send must wait),
    /// framed if the connection frames. Ok(true): the kernel took the whole
    /// message; Ok(false): (the rest of) it waits in the queue, to go out
    /// with [`flush`](Self::flush) once the socket is writable.
    pub fn send(&mut self, data: &[u8], fds: &[RawFd]) -> Result<bool> {
        let Some(fd) = self.fd.as_ref() else {
            return Err(closed_error());
        };
        self.writes.send(fd.as_fd(), self.config.framing, data, fds)
    }

    /// Sends what the queue holds until the kernel pushes back.
    pub fn flush(&mut self) -> Vec<Event> {
        match self.fd.as_ref() {
            Some(fd) => self.writes.flush(fd.as_fd()),
            None => Vec::new(),
        }
    }

    /// Reads up to `max` messages (or accepted connections) without
    /// blocking, stopping after the message that brings the batch to
    /// `max_fds` fds. A connection whose reader pulls its reads reads
    /// nothing here: it reports [`Event::Readable`] (see [`pull`]).
    pub fn read(&mut self, max: usize, max_fds: usize) -> Vec<Event> {
        if self.config.listening {
            return self.accept(max);
        }
        if self.pull {
            return self.readable_event();
        }
        let (batch, tail) = self.read_batch(max, max_fds);
        batch.map(Event::Messages).into_iter().chain(tail).collect()
    }

    /// Gives back a batch whose contents were handed over, for the next read
    /// to reuse its allocations (unless a large message grew it).
    pub fn recycle(&mut self, batch: Batch) {
        self.spare_batch = batch.into_spare();
    }

    /// Closes: drops queued sends (closing their duplicated fds), the fds of
    /// frames not complete yet, and stops reading. Returns the socket itself
    /// for the caller to close once nothing watches it any more; None if
    /// already closed.
    pub fn close(&mut self) -> Option<OwnedFd> {
        self.writes.clear();
        self.decoder.clear();
        self.received_fds.clear();
        self.read_room = 0;
        self.fd.take()
    }
}

/// The error of an operation on a closed connection.
pub fn closed_error() -> Error {
    Error::os(nix::errno::Errno::EBADF, "fdpass")
}
