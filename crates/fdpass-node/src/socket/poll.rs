//! What the event loop watches for a socket, and what happens when it
//! reports.

use std::ffi::c_int;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use fdpass::conn::Interest;
use fdpass::Error as CoreError;
use napi_plumbing::uv::{READABLE, WRITABLE};
use napi_plumbing::watch::{Watched, Watcher};
use nix::errno::Errno;

use super::{deliver::deliver, Shared, Socket};

impl Watched for Socket {
    fn on_ready(shared: &Rc<Watcher<Self>>, status: c_int, events: c_int) {
        let events = {
            // On an error status, everything watched counts as ready (see
            // Connection::on_ready).
            let failure = (status < 0).then(|| CoreError::os(Errno::from_raw(-status), "uv_poll"));
            shared
                .value()
                .borrow_mut()
                .conn
                .on_ready(interest(events), failure)
        };
        let _ = update(shared);
        deliver(shared, events, true);
    }

    fn close(&mut self) -> Option<OwnedFd> {
        self.conn.close()
    }
}

/// Asks the loop to watch for what the connection needs now (which also
/// keeps the JavaScript callback alive exactly while something is pending).
pub(super) fn update(shared: &Rc<Shared>) -> Result<(), CoreError> {
    let wanted = shared.value().borrow().conn.interest();
    let events = (if wanted.readable { READABLE } else { 0 }) | (if wanted.writable { WRITABLE } else { 0 });
    shared
        .watch(events)
        .map_err(|e| CoreError::os(Errno::from_raw(e.errno), e.call))
}

/// The readiness uv `events` report.
fn interest(events: c_int) -> Interest {
    Interest {
        readable: events & READABLE != 0,
        writable: events & WRITABLE != 0,
    }
}
