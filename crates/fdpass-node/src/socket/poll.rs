//! The libuv side of a socket: what the poll handle watches for, and what
//! happens when it fires.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::rc::Rc;

use fdpass::Error as CoreError;
use napi::sys;
use nix::errno::Errno;

use super::{deliver::deliver, Shared, State};
use fdpass::conn::Interest;
use napi_plumbing::uv::{Poll, READABLE, WRITABLE};

/// Asks the loop to watch for what the connection needs now, and keeps the
/// JavaScript callback alive exactly while something is pending.
pub(super) fn update(shared: &Rc<Shared>) -> Result<(), CoreError> {
    let mut state = shared.state.borrow_mut();
    let state = &mut *state;
    if state.conn.is_closed() {
        return Ok(());
    }
    let wanted = events(state.conn.interest());
    if wanted != 0 && state.poll.is_none() {
        state.poll = Some(new_poll(shared, state)?);
    }
    if wanted != state.events {
        if let Some(poll) = &state.poll {
            let r = poll.set(wanted, on_poll);
            if r != 0 {
                return Err(CoreError::os(Errno::from_raw(-r), "uv_poll_start"));
            }
        }
        state.events = wanted;
    }
    if let Some(callback) = &mut state.callback {
        // SAFETY: the socket is open, so its env is alive (a closing env
        // closes it first).
        unsafe { callback.set_strong(shared.env, wanted != 0) };
    }
    Ok(())
}

/// A poll handle for the socket, holding one count of `shared` until its
/// close callback.
fn new_poll(shared: &Rc<Shared>, state: &State) -> Result<Poll, CoreError> {
    let mut lp = ptr::null_mut();
    // SAFETY: the env is live on this thread; lp is an out-pointer to a local.
    let status = unsafe { sys::napi_get_uv_event_loop(shared.env, &mut lp) };
    if status != sys::Status::napi_ok {
        return Err(CoreError::os(Errno::EINVAL, "napi_get_uv_event_loop"));
    }
    let data = Rc::into_raw(shared.clone()) as *mut c_void;
    // SAFETY: the loop is this thread's; the fd stays open until close(),
    // which closes the handle first; `data` holds one count of the Rc.
    match unsafe { Poll::new(lp, state.conn.raw_fd(), data) } {
        Ok(poll) => {
            if !state.refed {
                poll.set_ref(false);
            }
            Ok(poll)
        }
        Err(code) => {
            // SAFETY: takes back the count that no handle holds.
            drop(unsafe { Rc::from_raw(data as *const Shared) });
            Err(CoreError::os(Errno::from_raw(-code), "uv_poll_init"))
        }
    }
}

unsafe extern "C" fn on_poll(handle: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: the handle's data holds a count of the Rc until its close
    // callback, which cannot have run while the loop calls this one; the
    // count added here keeps the state alive for the whole callback,
    // whatever JavaScript does.
    let shared = unsafe {
        let data = Poll::data_of(handle) as *const Shared;
        Rc::increment_strong_count(data);
        Rc::from_raw(data)
    };
    let events = {
        let mut state = shared.state.borrow_mut();
        // On an error status, everything watched counts as ready (see
        // Connection::on_ready).
        let failure = (status < 0).then(|| CoreError::os(Errno::from_raw(-status), "uv_poll"));
        let ready = if status < 0 { state.events } else { events };
        state.conn.on_ready(interest(ready), failure)
    };
    let _ = update(&shared);
    deliver(&shared, events, true);
}

pub(super) unsafe extern "C" fn on_close(handle: *mut c_void) {
    // SAFETY: this is the close callback of a handle made by Poll::new, whose
    // data holds one count of the Rc; the handle is not used after this.
    unsafe {
        let data = Poll::data_of(handle) as *const Shared;
        Poll::free(handle);
        // The fd was closed by close(); this releases the handle's count.
        drop(Rc::from_raw(data));
    }
}

/// The uv events that watch for `interest`.
fn events(interest: Interest) -> c_int {
    (if interest.readable { READABLE } else { 0 }) | (if interest.writable { WRITABLE } else { 0 })
}

/// The readiness uv `events` report.
fn interest(events: c_int) -> Interest {
    Interest {
        readable: events & READABLE != 0,
        writable: events & WRITABLE != 0,
    }
}
