//! Buffers shared with JavaScript (the core's [`SharedBuffers`]), one set per
//! copy of fdpass's JavaScript on a thread (usually one; a test runner's
//! fresh module registry loads another), through which received batches pass
//! without creating objects. (Sends go through the lean scratch, see
//! lean.rs.) JavaScript reads a batch before the call that wrote it returns,
//! so one set serves every socket of its copy; each socket names its set by
//! the id `initBuffers` returned. Also the loop flags of the deferred stops
//! (`src/internal/deferred-stops.ts`), and the settle function they call.

use std::cell::RefCell;
use std::os::fd::OwnedFd;

use fdpass::shared_buffers::SharedBuffers;
use napi::bindgen_prelude::{Result, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;

use crate::errors::{misuse, napi_failure};
use crate::values::kept_region;
use napi_plumbing::loop_callback::{call, in_callback_scope, in_handle_scope, LoopCallback};
use napi_plumbing::values::KeptValues;

struct Set {
    env: sys::napi_env,
    buffers: SharedBuffers,
    /// The typed arrays under `buffers`.
    arrays: KeptValues,
    /// JavaScript's function that settles the deferred stops.
    settle: LoopCallback,
}

thread_local! {
    /// The sets of this thread, by id; a set is forgotten when its
    /// environment ends, and ids are not reused.
    static SETS: RefCell<Vec<Option<Set>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the set `id`, if it is registered and alive.
fn with_set<R>(id: Option<usize>, f: impl FnOnce(&Set) -> R) -> Option<R> {
    let id = id?;
    SETS.with_borrow(|sets| sets.get(id).and_then(Option::as_ref).map(f))
}

/// Registers a set of shared buffers and the function that settles deferred
/// stops (called once by each copy of the TypeScript layer); returns the
/// set's id, which the copy's sockets are made with. Each typed array must be
/// over an ArrayBuffer of its own (whose memory V8 never moves, unlike a
/// small typed array's inline storage); `flags` an Int32Array of at least
/// two slots.
#[napi(js_name = "initBuffers")]
pub fn init_buffers(
    env: Env,
    scratch: Unknown<'_>,
    meta: Unknown<'_>,
    flags: Unknown<'_>,
    settle: Unknown<'_>,
) -> Result<u32> {
    let raw = env.raw();
    let mut arrays = KeptValues::new(raw);
    // SAFETY: values of this call in its live env; the references keep them
    // (and so the arrays' memory) alive until the environment ends.
    let (scratch, meta, flags) = unsafe {
        (
            kept_region::<u8>(&mut arrays, scratch.raw()),
            kept_region::<i32>(&mut arrays, meta.raw()),
            kept_region::<i32>(&mut arrays, flags.raw()),
        )
    };
    let buffers = match (scratch, meta, flags) {
        (Some(scratch), Some(meta), Some(flags)) => SharedBuffers::new(scratch, meta, flags),
        _ => None,
    };
    let Some(buffers) = buffers else {
        // SAFETY: made in this live env; the regions over them are not used.
        unsafe { arrays.release() };
        return Err(misuse(&env));
    };
    // SAFETY: a value of this call in its live env.
    let Some(settle) = (unsafe { LoopCallback::new(raw, settle.raw(), c"fdpass:settle", true) }) else {
        // SAFETY: as above.
        unsafe { arrays.release() };
        return Err(napi_failure(&env, "registering the shared buffers"));
    };
    let set = Set {
        env: raw,
        buffers,
        arrays,
        settle,
    };
    let id = SETS.with_borrow_mut(|sets| {
        sets.push(Some(set));
        sets.len() - 1
    });
    // SAFETY: the hook forgets the set when this environment ends. Its
    // argument is the id, not a pointer (nothing to free), which no other
    // registration on this thread has (Node refuses a hook added twice with
    // the same argument).
    unsafe { sys::napi_add_env_cleanup_hook(raw, Some(forget), id as *mut std::ffi::c_void) };
    Ok(id as u32)
}

unsafe extern "C" fn forget(arg: *mut std::ffi::c_void) {
    let Some(set) = SETS.with_borrow_mut(|sets| sets.get_mut(arg as usize).and_then(Option::take)) else {
        return;
    };
    // SAFETY: made in this env, which is still alive while its cleanup hooks
    // run; the regions over the arrays went with the set.
    unsafe {
        set.arrays.release();
        set.settle.release(set.env, true);
    }
}

/// Writes a batch into the set `id` and hands its fds over to JavaScript.
/// Returns false (and keeps everything) when it does not fit or there is no
/// such set.
pub fn publish(id: Option<usize>, data: &[u8], meta: &[i32], fds: &mut Vec<OwnedFd>) -> bool {
    let published = with_set(id, |set| set.buffers.publish(data, meta)).unwrap_or(false);
    if published {
        crate::held_fds::hand_over(id, fds);
    }
    published
}

/// Marks the start of an event-loop delivery to a socket of the set `id`;
/// returns whether one was already running (a nested delivery leaves the
/// settling to that one), or there is no such set.
pub fn begin_loop_delivery(id: Option<usize>) -> bool {
    with_set(id, |set| set.buffers.begin_delivery()).unwrap_or(true)
}

/// Ends an event-loop delivery (its microtasks have run). The outermost one
/// calls JavaScript's settle function if it was asked to, in a callback scope
/// of its own, so that its microtasks and errors are handled as after any
/// I/O callback.
pub fn end_loop_delivery(env: sys::napi_env, id: Option<usize>, nested: bool) {
    if nested || !with_set(id, |set| set.buffers.end_delivery()).unwrap_or(false) {
        return;
    }
    // SAFETY: this thread's live env; the set's callback is alive until the
    // environment's cleanup hook. The set is not borrowed while JavaScript
    // runs (which may register another).
    unsafe {
        in_handle_scope(env, || {
            let settle = with_set(id, |set| Some((set.settle.function(env)?, set.settle.context())));
            if let Some((func, context)) = settle.flatten() {
                in_callback_scope(env, context, || {
                    call(env, func, &[], true);
                });
            }
        })
    }
}
