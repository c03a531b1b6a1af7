//! The lean calls' shared state: the per-message functions (raw `sendFds`/
//! `recvFds`/`closeFds`, and `FdSocket`'s send and read) are plain napi
//! callbacks that exchange integers, fd numbers and small payloads through
//! one scratch ArrayBuffer per JavaScript environment ([`Lean`]).
//!
//! napi-rs's generated glue costs about 70 ns per call on the test machine
//! (it allocates borrow-tracking state on every call, and a class method also
//! unwraps `this` and checks its type tag), more than a whole close(2);
//! converting an fd array to a Vec, allocating and copying a Buffer and
//! building a result object with named properties cost more again. For one
//! fd and one byte that is more than the syscalls. So the hot calls are plain
//! napi callbacks, and integer arguments and results, fd numbers and small
//! payloads cross through the scratch, which `src/lean.ts` reads and writes
//! directly: a call takes only the objects it needs (a socket handle, a large
//! payload) as arguments, and returns nothing (converting each integer
//! argument and result costs about as much as a plain store, times ten).
//!
//! The scratch's layout and the per-call operations on it are the core's
//! (`fdpass::scratch`); this module owns the ArrayBuffer, hands each lean
//! callback its [`Lean`] and arguments, and throws what a call returns.
//!
//! This module is below every user of the scratch: it knows no socket and no
//! raw call (the functions are assembled by `lean_exports.rs`).

use std::ffi::{c_void, CStr};
use std::ptr;

use fdpass::scratch::{CallError, CallResult, Malformed, Scratch};
use fdpass::wire_constants::SCRATCH_LEN;
use napi::{sys, Env};

use crate::errors::throw;
use crate::values::typed_array;

/// What the lean callbacks of one environment share (their napi `data`).
pub struct Lean {
    /// The scratch ArrayBuffer's bytes, alive as long as the environment
    /// (see [`Lean::create`]).
    pub scratch: Scratch,
    /// The env and the reference that keeps the scratch ArrayBuffer alive,
    /// released with the rest when the env ends.
    env: sys::napi_env,
    reference: sys::napi_ref,
}

/// A lean function: its name and its plain napi callback.
pub type LeanFunction = (&'static CStr, LeanCallback);
/// A plain napi callback whose `data` is the environment's [`Lean`].
pub type LeanCallback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

impl Lean {
    /// The scratch ArrayBuffer of environment `env` and the [`Lean`] over
    /// it, freed by the environment's cleanup hook; None if napi fails.
    ///
    /// # Safety
    /// `env` must be the live env of the running call.
    pub unsafe fn create(env: sys::napi_env) -> Option<(*mut Lean, sys::napi_value)> {
        let mut data = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        let mut reference = ptr::null_mut();
        // SAFETY: raw napi calls on the live env, with out-pointers to
        // locals. The reference (count 1, released by the cleanup hook) keeps
        // the ArrayBuffer, hence `scratch`, alive as long as the environment;
        // the buffer never leaves `src/lean.ts`, so nothing can detach it.
        unsafe {
            if sys::napi_create_arraybuffer(env, SCRATCH_LEN, &mut data, &mut buffer) != sys::Status::napi_ok
            {
                return None;
            }
            // The ArrayBuffer's SCRATCH_LEN bytes (V8 aligns them to 8)
            // stay valid with the reference, and JavaScript, the only other
            // user, never runs during a lean call.
            let scratch = Scratch::from_raw(data.cast())?;
            if sys::napi_create_reference(env, buffer, 1, &mut reference) != sys::Status::napi_ok {
                return None;
            }
            let lean = Box::into_raw(Box::new(Lean {
                scratch,
                env,
                reference,
            }));
            if sys::napi_add_env_cleanup_hook(env, Some(free_lean), lean.cast()) != sys::Status::napi_ok {
                free_lean(lean.cast());
                return None;
            }
            Some((lean, buffer))
        }
    }

    /// The bytes of a Uint8Array argument of the running call, for as long
    /// as the call's [`Lean`] is borrowed (no JavaScript runs meanwhile, so
    /// nothing can detach or resize it).
    pub fn bytes_arg(&self, env: sys::napi_env, value: sys::napi_value) -> Result<&[u8], Malformed> {
        // SAFETY: `env` and `value` are those of the running lean call (the
        // only place a `&Lean` is handed out, see `lean_call`); a Uint8Array's
        // bytes stay valid and unchanged while no JavaScript runs.
        unsafe {
            let (bytes, len) = typed_array(env, value, sys::TypedarrayType::uint8_array).ok_or(Malformed)?;
            Ok(if len == 0 || bytes.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(bytes.cast::<u8>(), len)
            })
        }
    }
}

/// Frees an environment's [`Lean`] when the environment shuts down, after
/// which none of its callbacks can run.
unsafe extern "C" fn free_lean(arg: *mut c_void) {
    // SAFETY: `arg` is the Box::into_raw of Lean::create, registered once
    // with this hook, which napi calls once, while the env is still alive.
    unsafe {
        let lean = Box::from_raw(arg.cast::<Lean>());
        sys::napi_delete_reference(lean.env, lean.reference);
    }
}

/// Runs `f` with the [`Lean`] and the `N` arguments of a running lean call;
/// [`CallError::Malformed`] if the call is. `f` must not run JavaScript (a call that
/// does, like `socketRead`, reads its arguments here and runs it after).
///
/// # Safety
/// `env` and `info` are those of a running lean callback.
pub unsafe fn lean_call<const N: usize, R>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    f: impl FnOnce(&mut Lean, [sys::napi_value; N]) -> CallResult<R>,
) -> CallResult<R> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data = ptr::null_mut();
    // SAFETY: env and info are those of the running callback (the caller's
    // promise); the out-pointers are locals with room for N arguments.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    if status != sys::Status::napi_ok || argc < N || data.is_null() {
        return Err(CallError::Malformed);
    }
    // SAFETY: `data` is the Lean given to napi_create_function with every
    // lean function, alive until the environment shuts down; JavaScript is
    // single-threaded per environment and `f` runs none, so this is the only
    // live reference to it, and it ends with `f`.
    f(unsafe { &mut *data.cast::<Lean>() }, argv)
}

/// Runs a send call: `f` gets the [`Lean`] and the call's data, its
/// Uint8Array argument when `EXTERNAL`, else None (the data is in the
/// scratch, see `fdpass::scratch::Scratch::outgoing`). Returns the callback's
/// result, having thrown the error if `f` failed.
///
/// # Safety
/// `env` and `info` are those of a running lean callback.
pub unsafe fn send_call<const EXTERNAL: bool>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    f: impl FnOnce(&Lean, Option<&[u8]>) -> CallResult<()>,
) -> sys::napi_value {
    // SAFETY: the caller's promise.
    unsafe {
        let result = if EXTERNAL {
            lean_call::<1, ()>(env, info, |lean, [data]| {
                f(lean, Some(lean.bytes_arg(env, data)?))
            })
        } else {
            lean_call::<0, ()>(env, info, |lean, []| f(lean, None))
        };
        finish(env, result)
    }
}

/// The napi result of a lean call: undefined, after throwing its error if it
/// failed (the misuse error for a malformed call, which the TypeScript layer
/// makes impossible).
///
/// # Safety
/// `env` is the env of a running lean callback.
#[inline(always)]
pub unsafe fn finish(env: sys::napi_env, result: CallResult<()>) -> sys::napi_value {
    if let Err(e) = result {
        // SAFETY: the caller's promise.
        unsafe { throw_call_error(env, e) };
    }
    ptr::null_mut()
}

/// Throws the error of a failed lean call: out of line, off the hot path.
///
/// # Safety
/// `env` is the env of a running lean callback.
#[cold]
#[inline(never)]
unsafe fn throw_call_error(env: sys::napi_env, error: CallError) {
    match error {
        // SAFETY: the caller's promise.
        CallError::Malformed => unsafe {
            crate::errors::throw_raw(env, "ERR_FDPASS_INTERNAL", crate::errors::MISUSE);
        },
        CallError::Failed(e) => {
            throw(&Env::from_raw(env), &e);
        }
    }
}
