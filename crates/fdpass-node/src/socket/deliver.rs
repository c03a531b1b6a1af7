//! Hands a connection's events to the JavaScript callback `(kind, a, b)`.

use std::rc::Rc;

use fdpass::conn::{accepted_meta, Batch, Event};
use fdpass::wire_constants::EV_PUBLISHED;
use napi::bindgen_prelude::{BufferSlice, Int32ArraySlice};
use napi::{sys, Env, JsValue};

use super::Shared;
use crate::errors::build_error;
use crate::held_fds::hand_over;
use crate::shared_buffers::{self, publish};
use napi_plumbing::values::js;

/// Hands events to the JavaScript callback (see `Watcher::call_each`). From
/// the event loop, all in one callback scope, not one per event: code
/// awaiting the first message of a batch typically calls `receive()` again at
/// once, and must find the rest of the batch (and the end or error that
/// closed the read) queued rather than read the socket past it.
pub(super) fn deliver(shared: &Rc<Shared>, events: Vec<Event>, from_loop: bool) {
    if events.is_empty() {
        return;
    }
    let buffers = shared.value().borrow().buffers;
    let nested = from_loop && shared_buffers::begin_loop_delivery(buffers);
    shared.call_each(events, from_loop, |env, event| {
        // SAFETY: call_each runs this on the env's live thread with a handle
        // scope open.
        unsafe { event_args(env, event, buffers) }
    });
    if from_loop {
        shared_buffers::end_loop_delivery(shared.env(), buffers, nested);
    }
}

/// Builds `(kind, a, b)` for an event. Received fds stay owned (and are closed
/// if building fails) until the values exist.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope open.
unsafe fn event_args(
    env: sys::napi_env,
    event: Event,
    buffers: Option<usize>,
) -> Option<[sys::napi_value; 3]> {
    let js_env = Env::from_raw(env);
    // SAFETY: values made in the live env (the caller's promise).
    unsafe {
        let undefined = js(env, ())?;
        let kind = js(env, event.code())?;
        let (a, b) = match event {
            Event::Messages(Batch { data, meta, mut fds }) => {
                if publish(buffers, &data, &meta, &mut fds) {
                    return Some([js(env, EV_PUBLISHED)?, js(env, meta[0])?, undefined]);
                }
                let a = BufferSlice::copy_from(&js_env, &data).ok()?.raw();
                let b = Int32ArraySlice::copy_from(&js_env, &meta).ok()?.raw();
                hand_over(buffers, &mut fds);
                (a, b)
            }
            Event::Accepted(mut fds) => {
                let b = Int32ArraySlice::copy_from(&js_env, accepted_meta(&fds))
                    .ok()?
                    .raw();
                // Not marked held: JavaScript adopts each into a socket at once.
                hand_over(None, &mut fds);
                (undefined, b)
            }
            Event::End | Event::Readable => (undefined, undefined),
            Event::Written(n) => (js(env, n)?, undefined),
            Event::Error(e) => (build_error(env, &e)?, undefined),
            Event::WriteError(e, n) => (build_error(env, &e)?, js(env, n)?),
        };
        Some([kind, a, b])
    }
}
