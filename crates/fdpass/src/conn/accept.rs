//! A listening connection's reads: accepted connections.

use std::os::fd::{AsRawFd, OwnedFd};

use super::{Connection, Event};
use crate::unix;

/// The metadata of an [`Event::Accepted`] as the binding hands it over:
/// `[count, fd...]`.
pub fn accepted_meta(fds: &[OwnedFd]) -> Vec<i32> {
    std::iter::once(fds.len() as i32)
        .chain(fds.iter().map(AsRawFd::as_raw_fd))
        .collect()
}

impl Connection {
    /// Accepts up to `max` connections without blocking. Running out of fds
    /// (EMFILE, ENFILE) is reported as a [`Event::WriteError`] the listener
    /// survives; any other failure as an [`Event::Error`].
    pub(super) fn accept(&mut self, max: usize) -> Vec<Event> {
        let mut events = Vec::new();
        let Some(sock) = self.fd.as_ref() else {
            return events;
        };
        let mut accepted = Vec::new();
        let mut failure = None;
        while accepted.len() < max {
            match unix::accept(std::os::fd::AsFd::as_fd(sock)) {
                Ok(Some(fd)) => accepted.push(fd),
                Ok(None) => break,
                Err(e) if matches!(e.errno(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    // Out of fds: report it, keep listening.
                    failure = Some(Event::WriteError(e, 0));
                    break;
                }
                Err(e) => {
                    failure = Some(Event::Error(e));
                    break;
                }
            }
        }
        if !accepted.is_empty() {
            events.push(Event::Accepted(accepted));
        }
        events.extend(failure);
        events
    }
}
