//! The lean functions of `FdSocket` and `FdServer` (see lean.rs): the calls
//! made for every message.

use std::os::fd::RawFd;
use std::ptr;
use std::rc::Rc;

use fdpass::conn::Event;
use fdpass::scratch::Malformed;
use napi::sys;

use super::deliver::deliver;
use super::{lookup, poll, Shared};
use crate::lean::{finish, lean_call, send_call};
use crate::shared_buffers::publish;
use napi_plumbing::plain::Function;

/// The lean functions of sockets.
///
/// `socketSend(data)`, integers [socket id, fdCount], sends the caller's
/// Uint8Array; `socketSendScratch()`, integers [socket id, dataLength,
/// fdCount], sends data from the scratch; both with the fds in slots
/// [0, fdCount). The result is 1 when the kernel took the whole message, 0
/// when it was queued.
pub const LEAN_FUNCTIONS: &[Function] = &[
    (c"socketSend", socket_send_lean::<true>),
    (c"socketSendScratch", socket_send_lean::<false>),
    (c"socketRead", socket_read_lean),
];

/// The socket named by id `id` in `env`, with a count held for the call;
/// malformed for an id that names no live socket of `env`.
pub(super) fn socket(env: sys::napi_env, id: i32) -> Result<Rc<Shared>, Malformed> {
    lookup(env, id).ok_or(Malformed)
}

/// The two sends: the data is the call's argument when `EXTERNAL`, in the
/// scratch otherwise.
unsafe extern "C" fn socket_send_lean<const EXTERNAL: bool>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    unsafe {
        send_call::<EXTERNAL>(env, info, |lean, data| {
            let (id, data, fds) = lean.scratch.outgoing(data)?;
            let sent_now = send(&socket(env, id)?, data, fds)?;
            lean.scratch.set_result(i32::from(sent_now));
            Ok(())
        })
    }
}

/// Sends on `shared`: whether the kernel took the whole message now (else it
/// was queued, and the socket now polls for writability).
fn send(shared: &Rc<Shared>, data: &[u8], fds: &[RawFd]) -> fdpass::Result<bool> {
    let sent_now = shared.value().borrow_mut().conn.send(data, fds)?;
    if !sent_now {
        poll::update(shared)?;
    }
    Ok(sent_now)
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
            let scratch = &lean.scratch;
            Ok((
                socket(env, scratch.int(0)?)?,
                scratch.count(1)?,
                scratch.count(2)?,
                scratch.result_slot(),
            ))
        })
    };
    let (shared, max, max_fds, result_slot) = match args {
        Ok(args) => args,
        // SAFETY: env is that of this running callback.
        Err(e) => return unsafe { finish(env, Err(e)) },
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
        let mut socket = shared.value().borrow_mut();
        if socket.conn.is_listening() {
            events = socket.conn.read(max, max_fds);
        } else {
            let (batch, tail) = socket.conn.read_batch(max, max_fds);
            if let Some(mut batch) = batch {
                if tail.is_none() && publish(socket.buffers, &batch.data, &batch.meta, &mut batch.fds) {
                    let count = batch.count() as i32;
                    socket.conn.recycle(batch);
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
