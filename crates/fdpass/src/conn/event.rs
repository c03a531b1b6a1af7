//! What a connection tells its owner.

use std::os::fd::OwnedFd;

use super::Batch;
use crate::error::Error;
use crate::wire_constants as wire;

/// Something that happened on a connection. Fds in an event are owned by it
/// until the receiver takes them (dropping the event closes them).
#[derive(Debug)]
pub enum Event {
    /// Messages arrived.
    Messages(Batch),
    /// Connections were accepted (listening sockets).
    Accepted(Vec<OwnedFd>),
    /// The peer closed the stream.
    End,
    /// The connection failed and is unusable.
    Error(Error),
    /// This many queued sends completed.
    Written(u32),
    /// A queued send failed; this many queued sends were dropped with it.
    /// (A listener reports running out of fds this way, with 0, and goes on
    /// listening.)
    WriteError(Error, u32),
    /// The socket has input, for a connection that pulls its reads itself
    /// ([`Connection::set_pull_reads`](super::Connection::set_pull_reads)).
    Readable,
}

impl Event {
    /// The event's code in the native protocol (see [`wire_constants`](crate::wire_constants)).
    pub fn code(&self) -> i32 {
        match self {
            Event::Messages(_) => wire::EV_MESSAGES,
            Event::Accepted(_) => wire::EV_ACCEPTED,
            Event::End => wire::EV_END,
            Event::Error(_) => wire::EV_ERROR,
            Event::Written(_) => wire::EV_WRITTEN,
            Event::WriteError(..) => wire::EV_WRITE_ERROR,
            Event::Readable => wire::EV_READABLE,
        }
    }
}
