//! Buffers shared with JavaScript, one set per copy of fdpass's JavaScript
//! on a thread (usually one; a test runner's fresh module registry loads
//! another), through which the hot paths pass data without creating
//! objects: received batches are written into `scratch` (payloads) and
//! `meta` (counts, lengths, fds). (Sends go through the lean scratch, see
//! lean.rs.) JavaScript reads a batch before the call that wrote it returns,
//! so one set serves every socket of its copy; each socket names its set by
//! the id `initBuffers` returned.
//!
//! Also the two flags of the deferred stops (`src/deferred-stops.ts`):
//! `flags[0]` is 1 while an event-loop delivery runs, its microtasks
//! included; JavaScript sets `flags[1]` to have its settle function called
//! once they have run.

use std::cell::RefCell;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::ptr;

// The slots of `flags`.
use fdpass::wire_constants::{LOOP_FLAG_DELIVERING as DELIVERING, LOOP_FLAG_SETTLE as SETTLE};
use napi::bindgen_prelude::{Result, Unknown};
use napi::{sys, Env, JsValue};

use crate::errors::{misuse, napi_failure};
use crate::values::{keep, typed_array};
use napi_derive::napi;

struct Region<T> {
    ptr: *mut T,
    len: usize,
    reference: sys::napi_ref,
}

struct Buffers {
    scratch: Region<u8>,
    meta: Region<i32>,
    flags: Region<i32>,
    /// JavaScript's function that settles the deferred stops, and the async
    /// context its calls run in.
    settle: sys::napi_ref,
    settle_context: sys::napi_async_context,
    /// Whether the cleanup hook may destroy `settle_context`: Deno aborts
    /// (V8: "Cannot create a handle without a HandleScope") on
    /// napi_async_destroy once its environment is shutting down; the
    /// context then ends with the environment.
    destroy_context_at_teardown: bool,
}

thread_local! {
    /// The sets of this thread, by id; a set is forgotten when its
    /// environment ends, and ids are not reused.
    static BUFFERS: RefCell<Vec<Option<Buffers>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the set `id`, if it is registered and alive.
fn with_buffers<R>(id: Option<usize>, f: impl FnOnce(&Buffers) -> R) -> Option<R> {
    let id = id?;
    BUFFERS.with_borrow(|sets| sets.get(id).and_then(Option::as_ref).map(f))
}

/// Typed array data of `value`, kept alive by a reference that lives as long
/// as the environment.
///
/// # Safety
/// `env` and `value` must be the live env and a value of the running call.
unsafe fn region<T>(
    env: sys::napi_env,
    value: sys::napi_value,
    kind: sys::napi_typedarray_type,
) -> Option<Region<T>> {
    // SAFETY: the caller's promise.
    unsafe {
        let (data, len) = typed_array(env, value, kind)?;
        Some(Region {
            ptr: data.cast(),
            len,
            reference: keep(env, value)?,
        })
    }
}

/// Registers a set of shared buffers and the function that settles deferred
/// stops (called once by each copy of the TypeScript layer); returns the
/// set's id, which the copy's sockets are made with. `flags` must be an
/// Int32Array of at least two slots over an ArrayBuffer of its own (whose
/// memory V8 never moves, unlike a small typed array's inline storage).
#[napi(js_name = "initBuffers")]
pub fn init_buffers(
    env: Env,
    scratch: Unknown<'_>,
    meta: Unknown<'_>,
    flags: Unknown<'_>,
    settle: Unknown<'_>,
) -> Result<u32> {
    let raw = env.raw();
    // The references made so far, released if the registration fails.
    let mut made = Vec::new();
    // SAFETY: raw napi calls on the live env of this call; the references keep
    // the typed arrays (and so their memory, which V8 never moves) and the
    // function alive.
    let registered = unsafe {
        let mut make = || -> Result<Buffers> {
            let misuse = || misuse(&env);
            let scratch =
                region::<u8>(raw, scratch.raw(), sys::TypedarrayType::uint8_array).ok_or_else(misuse)?;
            made.push(scratch.reference);
            let meta = region::<i32>(raw, meta.raw(), sys::TypedarrayType::int32_array).ok_or_else(misuse)?;
            made.push(meta.reference);
            let flags =
                region::<i32>(raw, flags.raw(), sys::TypedarrayType::int32_array).ok_or_else(misuse)?;
            made.push(flags.reference);
            if flags.len < 2 {
                return Err(misuse());
            }
            let mut settle_ref = ptr::null_mut();
            if sys::napi_create_reference(raw, settle.raw(), 1, &mut settle_ref) != sys::Status::napi_ok {
                return Err(misuse());
            }
            made.push(settle_ref);
            let mut name = ptr::null_mut();
            let mut settle_context = ptr::null_mut();
            let resource = c"fdpass:settle";
            let length = resource.to_bytes().len() as isize;
            if sys::napi_create_string_utf8(raw, resource.as_ptr(), length, &mut name) != sys::Status::napi_ok
                || sys::napi_async_init(raw, ptr::null_mut(), name, &mut settle_context)
                    != sys::Status::napi_ok
            {
                return Err(napi_failure(&env, "registering the shared buffers"));
            }
            Ok(Buffers {
                scratch,
                meta,
                flags,
                settle: settle_ref,
                settle_context,
                destroy_context_at_teardown: !crate::values::is_deno(raw),
            })
        };
        make()
    };
    let buffers = match registered {
        Ok(buffers) => buffers,
        Err(error) => {
            for reference in made {
                // SAFETY: made above in this live env, and not kept anywhere.
                unsafe { sys::napi_delete_reference(raw, reference) };
            }
            return Err(error);
        }
    };
    let id = BUFFERS.with_borrow_mut(|sets| {
        sets.push(Some(buffers));
        sets.len() - 1
    });
    let forgetting = Box::new(Forget { env: env.raw(), id });
    // SAFETY: the hook forgets the set when this environment ends; its
    // argument is a fresh allocation, so no two registrations share one
    // (Node refuses a hook added twice with the same argument).
    unsafe { sys::napi_add_env_cleanup_hook(env.raw(), Some(forget), Box::into_raw(forgetting).cast()) };
    Ok(id as u32)
}

/// What the cleanup hook of one set needs.
struct Forget {
    env: sys::napi_env,
    id: usize,
}

unsafe extern "C" fn forget(arg: *mut std::ffi::c_void) {
    // SAFETY: the argument is the Box made for this hook, which runs once.
    let Forget { env, id } = *unsafe { Box::from_raw(arg.cast::<Forget>()) };
    if let Some(b) = BUFFERS.with_borrow_mut(|sets| sets.get_mut(id).and_then(Option::take)) {
        // SAFETY: the references were made in this env, which is still alive
        // while its cleanup hooks run.
        unsafe {
            sys::napi_delete_reference(env, b.scratch.reference);
            sys::napi_delete_reference(env, b.meta.reference);
            sys::napi_delete_reference(env, b.flags.reference);
            sys::napi_delete_reference(env, b.settle);
            if b.destroy_context_at_teardown {
                sys::napi_async_destroy(env, b.settle_context);
            }
        }
    }
}

/// Writes a batch into the set `id` and hands its fds over to JavaScript.
/// Returns false (and keeps everything) when it does not fit or there is no
/// such set.
pub fn publish(id: Option<usize>, data: &[u8], meta: &[i32], fds: &mut Vec<OwnedFd>) -> bool {
    with_buffers(id, |b| {
        if data.len() > b.scratch.len || meta.len() > b.meta.len {
            return false;
        }
        // SAFETY: both regions are live and large enough (checked above); the
        // sources are Rust-owned and do not overlap them.
        unsafe {
            ptr::copy_nonoverlapping(data.as_ptr(), b.scratch.ptr, data.len());
            ptr::copy_nonoverlapping(meta.as_ptr(), b.meta.ptr, meta.len());
        }
        crate::held_fds::mark(id, fds);
        for fd in fds.drain(..) {
            let _ = fd.into_raw_fd();
        }
        true
    })
    .unwrap_or(false)
}

/// Marks the start of an event-loop delivery to a socket of the set `id`;
/// returns whether one was already running (a nested delivery leaves the
/// settling to that one), or there is no such set.
pub fn begin_loop_delivery(id: Option<usize>) -> bool {
    with_buffers(id, |b| {
        // SAFETY: the flags region is live and has at least two slots
        // (checked at registration); JavaScript runs on this same thread, so
        // nothing writes it meanwhile.
        unsafe {
            let delivering = b.flags.ptr.add(DELIVERING);
            let was = delivering.read() != 0;
            delivering.write(1);
            was
        }
    })
    .unwrap_or(true)
}

/// Ends an event-loop delivery (its microtasks have run). The outermost one
/// calls JavaScript's settle function if it was asked to, in a callback scope
/// of its own, so that its microtasks and errors are handled as after any
/// I/O callback.
pub fn end_loop_delivery(env: sys::napi_env, id: Option<usize>, nested: bool) {
    if nested {
        return;
    }
    let due = with_buffers(id, |b| {
        // SAFETY: as in begin_loop_delivery.
        let asked = unsafe {
            b.flags.ptr.add(DELIVERING).write(0);
            let settle = b.flags.ptr.add(SETTLE);
            let asked = settle.read() != 0;
            settle.write(0);
            asked
        };
        asked.then_some((b.settle, b.settle_context))
    });
    let Some((settle, context)) = due.flatten() else {
        return;
    };
    // SAFETY: raw napi calls on this thread's live env; the handle scope
    // bounds the values made here, and the callback scope opened here is
    // closed here.
    unsafe {
        let mut scope = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        let mut func = ptr::null_mut();
        let mut global = ptr::null_mut();
        let mut callback_scope = ptr::null_mut();
        if sys::napi_get_reference_value(env, settle, &mut func) == sys::Status::napi_ok
            && !func.is_null()
            && sys::napi_get_global(env, &mut global) == sys::Status::napi_ok
            && sys::napi_open_callback_scope(env, ptr::null_mut(), context, &mut callback_scope)
                == sys::Status::napi_ok
        {
            let mut result = ptr::null_mut();
            let status = sys::napi_call_function(env, global, func, 0, ptr::null(), &mut result);
            if status == sys::Status::napi_pending_exception {
                let mut error = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut error);
                sys::napi_fatal_exception(env, error);
            }
            sys::napi_close_callback_scope(env, callback_scope);
        }
        sys::napi_close_handle_scope(env, scope);
    }
}
