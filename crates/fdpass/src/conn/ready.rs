//! What a connection does when its watcher reports readiness.

use super::{Connection, Event, Interest};
use crate::error::Error;

impl Connection {
    /// Acts on readiness: sends what waits in the queue when the socket is
    /// writable, and reads up to the reader's room (nothing without room)
    /// when it is readable. `failure` is the watcher's own error (libuv
    /// reports POLLERR/POLLHUP as an error status), which says little: the
    /// watcher then reports everything it watches as ready, so that the
    /// syscalls tell what happened (ECONNRESET, EPIPE, end of stream); only
    /// when they tell nothing is `failure` the event.
    pub fn on_ready(&mut self, ready: Interest, failure: Option<Error>) -> Vec<Event> {
        let mut events = Vec::new();
        if ready.writable {
            events.extend(self.flush());
        }
        let (room, fd_room) = self.reading();
        if ready.readable && room > 0 {
            events.extend(self.read(room, fd_room));
        }
        if events.is_empty() {
            events.extend(failure.map(Event::Error));
        }
        events
    }
}
