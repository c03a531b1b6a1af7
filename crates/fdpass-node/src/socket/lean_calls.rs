//! The lean functions of `FdSocket` and `FdServer` (see lean.rs): the calls
//! made for every message.

use std::os::fd::RawFd;
use std::ptr;
use std::rc::Rc;

use fdpass::conn::Event;
use napi::{sys, Env};

use super::deliver::deliver;
use super::{lookup, poll, Shared};
use crate::errors::throw;
use crate::lean::{lean_call, throw_misuse, Lean, LeanFunction};
use crate::shared_buffers::publish;

/// The lean functions of sockets.
pub const LEAN_FUNCTIONS: &[LeanFunction] = &[
    (c"socketSend", socket_send_lean),
    (c"socketSendScratch", socket_send_scratch_lean),
    (c"socketRead", socket_read_lean),
];

/// The socket named by integer argument `i` of a lean call in `env`, with a
/// count held for the call; None for an id that names no live socket of `env`.
fn arg_socket(env: sys::napi_env, lean: &Lean, i: usize) -> Option<Rc<Shared>> {
    lookup(env, lean.int(i)?)
}

/// Sends with the fds of `lean`'s slots; the result is 1 when the kernel
/// took the whole message, 0 when it was queued.
fn send_and_report(env: sys::napi_env, lean: &Lean, shared: &Rc<Shared>, data: &[u8], fds: &[RawFd]) {
    let sent = shared.state.borrow_mut().conn.send(data, fds);
    match sent.and_then(|now| {
        if now {
            Ok(true)
        } else {
            poll::update(shared).map(|()| false)
        }
    }) {
        Ok(sent_now) => lean.set_result(i32::from(sent_now)),
        Err(e) => {
            throw(&Env::from_raw(env), &e);
        }
    }
}

/// `socketSend(data)`, integers [socket id, fdCount]: sends `data` (the
/// caller's Uint8Array) with the fds in scratch slots [0, fdCount).
unsafe extern "C" fn socket_send_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    let done = unsafe {
        lean_call::<1, ()>(env, info, |lean, [data]| {
            let shared = arg_socket(env, lean, 0)?;
            let data = lean.bytes_arg(env, data)?;
            let fds = lean.fd_slots(lean.count(1)?)?;
            send_and_report(env, lean, &shared, data, fds);
            Some(())
        })
    };
    // SAFETY: env is that of this running callback.
    done.map_or_else(|| unsafe { throw_misuse(env) }, |()| ptr::null_mut())
}

/// `socketSendScratch()`, integers [socket id, dataLength, fdCount]: sends
/// scratch data bytes [0, dataLength) with the fds in scratch slots
/// [0, fdCount).
unsafe extern "C" fn socket_send_scratch_lean(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    let done = unsafe {
        lean_call::<0, ()>(env, info, |lean, []| {
            let shared = arg_socket(env, lean, 0)?;
            let data = lean.data(lean.count(1)?)?;
            let fds = lean.fd_slots(lean.count(2)?)?;
            send_and_report(env, lean, &shared, data, fds);
            Some(())
        })
    };
    // SAFETY: env is that of this running callback.
    done.map_or_else(|| unsafe { throw_misuse(env) }, |()| ptr::null_mut())
}

/// `socketRead()`, integers [socket id, max, maxFds]: reads what is queued,
/// up to `max` messages (or connections) and about `maxFds` fds.
///
/// The common case returns without calling back: a batch of `n` messages
/// written into the shared buffers gives the result `n`. Nothing read gives
/// 0; anything delivered through the socket's callback (end of stream, an
/// error, accepted connections, a batch too large for the shared buffers)
/// gives -1. The result is set after the callback has run, so that lean
/// calls it makes cannot overwrite it.
unsafe extern "C" fn socket_read_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // The callback may run JavaScript that makes lean calls: the Lean is
    // used only to read the arguments; `shared` holds its own count.
    // SAFETY: env and info are those of this running callback.
    let args = unsafe {
        lean_call::<0, _>(env, info, |lean, []| {
            Some((
                arg_socket(env, lean, 0)?,
                lean.count(1)?,
                lean.count(2)?,
                lean.result_slot(),
            ))
        })
    };
    let Some((shared, max, max_fds, result_slot)) = args else {
        // SAFETY: env is that of this running callback.
        return unsafe { throw_misuse(env) };
    };
    let result = read_now(&shared, max, max_fds);
    // SAFETY: the slot is in the scratch's memory, alive with the env.
    unsafe { result_slot.write(result) };
    ptr::null_mut()
}

/// See [`socket_read_lean`].
fn read_now(shared: &Rc<Shared>, max: usize, max_fds: usize) -> i32 {
    let mut events = Vec::new();
    {
        let mut state = shared.state.borrow_mut();
        if state.conn.is_listening() {
            events = state.conn.read(max, max_fds);
        } else {
            let (batch, tail) = state.conn.read_batch(max, max_fds);
            if let Some(mut batch) = batch {
                if tail.is_none() && publish(shared.buffers, &batch.data, &batch.meta, &mut batch.fds) {
                    let count = batch.count() as i32;
                    state.conn.recycle(batch);
                    return count;
                }
                events.push(Event::Messages(batch));
            }
            events.extend(tail);
        }
    }
    let delivered = !events.is_empty();
    deliver(shared, events, false);
    if delivered {
        -1
    } else {
        0
    }
}
