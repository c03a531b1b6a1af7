//! Hands a connection's events to the JavaScript callback `(kind, a, b)`.

use std::os::fd::{AsRawFd, IntoRawFd};
use std::ptr;
use std::rc::Rc;

use fdpass::conn::{Batch, Event};
use fdpass::wire_constants::EV_PUBLISHED;
use napi::sys;

use super::Shared;
use crate::errors::build_error;
use crate::shared_buffers::{self, publish};

/// Hands events to the JavaScript callback. From the event loop the calls are
/// made inside one callback scope (`napi_open_callback_scope`), so that
/// microtasks and `nextTick` run once JavaScript has the whole batch, as after
/// any Node I/O callback. Not between its events: code awaiting the first
/// message of a batch typically calls `receive()` again at once, and must find
/// the rest of the batch (and the end or error that closed the read) queued
/// rather than read the socket past it.
pub(super) fn deliver(shared: &Rc<Shared>, events: Vec<Event>, from_loop: bool) {
    if events.is_empty() {
        return;
    }
    let nested = from_loop && shared_buffers::begin_loop_delivery(shared.buffers);
    // SAFETY: called on the thread of the socket's env, which is alive
    // (from a live socket's method or its poll callback).
    unsafe { deliver_events(shared, events, from_loop) };
    if from_loop {
        shared_buffers::end_loop_delivery(shared.env, shared.buffers, nested);
    }
}

/// See [`deliver`].
///
/// # Safety
/// `shared.env` must be the live env of the current thread.
unsafe fn deliver_events(shared: &Rc<Shared>, events: Vec<Event>, from_loop: bool) {
    let env = shared.env;
    // SAFETY: raw napi calls on this thread's live env (the caller's promise);
    // a handle scope bounds every value created here, and the callback scope
    // opened here is closed here.
    unsafe {
        let mut scope = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        let mut callback_scope = ptr::null_mut();
        if from_loop {
            let (callback, async_context) = {
                let state = shared.state.borrow();
                (state.callback, state.async_context)
            };
            // Closed already: nobody takes these events (dropping them closes their fds).
            if callback.is_null()
                || sys::napi_open_callback_scope(env, ptr::null_mut(), async_context, &mut callback_scope)
                    != sys::Status::napi_ok
            {
                sys::napi_close_handle_scope(env, scope);
                return;
            }
        }
        for event in events {
            let callback = shared.state.borrow().callback;
            if callback.is_null() {
                break; // closed from JavaScript meanwhile: what is left is dropped (and closed).
            }
            let mut func = ptr::null_mut();
            if sys::napi_get_reference_value(env, callback, &mut func) != sys::Status::napi_ok
                || func.is_null()
            {
                break;
            }
            let Some(args) = event_args(env, event, shared.buffers) else {
                continue;
            };
            let mut global = ptr::null_mut();
            sys::napi_get_global(env, &mut global);
            let mut result = ptr::null_mut();
            let status = sys::napi_call_function(env, global, func, 3, args.as_ptr(), &mut result);
            if status == sys::Status::napi_pending_exception && from_loop {
                let mut error = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut error);
                sys::napi_fatal_exception(env, error);
                break;
            }
            if status != sys::Status::napi_ok {
                break;
            }
        }
        if !callback_scope.is_null() {
            sys::napi_close_callback_scope(env, callback_scope);
        }
        sys::napi_close_handle_scope(env, scope);
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
    let mut kind = ptr::null_mut();
    let mut a = ptr::null_mut();
    let mut b = ptr::null_mut();
    let code = event.code();
    // SAFETY: raw napi calls on the live env (the caller's promise), with
    // out-pointers to locals and slices that outlive each call.
    unsafe {
        sys::napi_get_undefined(env, &mut a);
        sys::napi_get_undefined(env, &mut b);
        match event {
            Event::Messages(Batch { data, meta, mut fds }) => {
                if publish(buffers, &data, &meta, &mut fds) {
                    sys::napi_create_int32(env, meta[0], &mut a);
                    sys::napi_create_int32(env, EV_PUBLISHED, &mut kind);
                    return Some([kind, a, b]);
                }
                a = buffer(env, &data)?;
                b = int32_array(env, &meta)?;
                crate::held_fds::mark(buffers, &fds);
                fds.into_iter().for_each(|fd| {
                    let _ = fd.into_raw_fd();
                });
            }
            Event::Accepted(fds) => {
                let mut meta = Vec::with_capacity(fds.len() + 1);
                meta.push(fds.len() as i32);
                meta.extend(fds.iter().map(AsRawFd::as_raw_fd));
                b = int32_array(env, &meta)?;
                fds.into_iter().for_each(|fd| {
                    let _ = fd.into_raw_fd();
                });
            }
            Event::End | Event::Readable => {}
            Event::Error(e) => a = build_error(env, &e, &e.to_string())?,
            Event::Written(n) => {
                sys::napi_create_uint32(env, n, &mut a);
            }
            Event::WriteError(e, n) => {
                a = build_error(env, &e, &e.to_string())?;
                sys::napi_create_uint32(env, n, &mut b);
            }
        }
        sys::napi_create_int32(env, code, &mut kind);
    }
    Some([kind, a, b])
}

/// A Buffer holding a copy of `data`.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope open.
unsafe fn buffer(env: sys::napi_env, data: &[u8]) -> Option<sys::napi_value> {
    let mut value = ptr::null_mut();
    let mut out = ptr::null_mut();
    // SAFETY: `data` is valid for its length during the call, which copies it.
    let status =
        unsafe { sys::napi_create_buffer_copy(env, data.len(), data.as_ptr().cast(), &mut out, &mut value) };
    (status == sys::Status::napi_ok).then_some(value)
}

/// An Int32Array holding a copy of `values`.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope open.
unsafe fn int32_array(env: sys::napi_env, values: &[i32]) -> Option<sys::napi_value> {
    let bytes = std::mem::size_of_val(values);
    let mut data = ptr::null_mut();
    let mut arraybuffer = ptr::null_mut();
    let mut array = ptr::null_mut();
    // SAFETY: the new ArrayBuffer's data is `bytes` long and nothing else
    // uses it yet, so the copy into it is in bounds and does not overlap.
    unsafe {
        if sys::napi_create_arraybuffer(env, bytes, &mut data, &mut arraybuffer) != sys::Status::napi_ok {
            return None;
        }
        if bytes > 0 {
            ptr::copy_nonoverlapping(values.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes);
        }
        let status = sys::napi_create_typedarray(
            env,
            sys::TypedarrayType::int32_array,
            values.len(),
            arraybuffer,
            0,
            &mut array,
        );
        (status == sys::Status::napi_ok).then_some(array)
    }
}
