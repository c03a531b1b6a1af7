//! The lean calls' shared state: the per-message functions (raw `sendFds`/
//! `recvFds`/`closeFds`, and `FdSocket`'s send and read) are plain napi
//! functions (`napi_plumbing::plain`) that exchange integers, fd numbers and
//! small payloads through one scratch ArrayBuffer per JavaScript environment
//! ([`Lean`]).
//!
//! napi-rs's generated glue costs about 70 ns per call on the test machine,
//! more than a whole close(2); converting an fd array to a Vec, allocating
//! and copying a Buffer and building a result object with named properties
//! cost more again. For one fd and one byte that is more than the syscalls.
//! So integer arguments and results, fd numbers and small payloads cross
//! through the scratch, which `src/internal/lean.ts` reads and writes
//! directly: a call takes only the objects it needs (a large payload, a
//! Buffer to read into) as arguments, and returns nothing (converting each
//! integer argument and result costs about as much as a plain store, times
//! ten).
//!
//! The scratch's layout and the per-call operations on it are the core's
//! (`fdpass::scratch`); this module owns the ArrayBuffer, hands each lean
//! callback its [`Lean`] and arguments, and throws what a call returns. It
//! knows no socket and no raw call (`lean_exports.rs` assembles them).

use std::ptr;

use fdpass::scratch::{CallError, CallResult, Malformed, Scratch};
use fdpass::wire_constants::SCRATCH_LEN;
use napi::{sys, Env};
use napi_plumbing::plain::{self, EnvData};
use napi_plumbing::values::{typed_array, KeptValues};

use crate::errors::{misuse, throw};

/// What the lean callbacks of one environment share (their napi `data`).
pub struct Lean {
    /// The scratch ArrayBuffer's bytes, alive as long as the environment.
    pub scratch: Scratch,
    /// The ArrayBuffer, kept until the environment ends.
    kept: KeptValues,
}

impl EnvData for Lean {
    unsafe fn teardown(self: Box<Self>) {
        // SAFETY: the env is alive (the trait's promise); nothing uses the
        // scratch after this.
        unsafe { self.kept.release() }
    }
}

impl Lean {
    /// A scratch ArrayBuffer for environment `env` and the [`Lean`] over it;
    /// None if napi fails.
    ///
    /// # Safety
    /// `env` must be the live env of the running call.
    pub unsafe fn create(env: sys::napi_env) -> Option<(Box<Lean>, sys::napi_value)> {
        let (mut data, mut buffer) = (ptr::null_mut(), ptr::null_mut());
        let mut kept = KeptValues::new(env);
        // SAFETY: raw napi calls on the live env, with out-pointers to
        // locals. The reference keeps the ArrayBuffer, hence its SCRATCH_LEN
        // bytes (which V8 aligns to 8), alive and in place as long as the
        // Lean; the buffer never leaves `src/internal/lean.ts`, so nothing
        // can detach it, and JavaScript, its only other user, never runs
        // during a lean call.
        unsafe {
            if sys::napi_create_arraybuffer(env, SCRATCH_LEN, &mut data, &mut buffer) != sys::Status::napi_ok
                || kept.value(buffer).is_none()
            {
                kept.release();
                return None;
            }
            let Some(scratch) = Scratch::from_raw(data.cast()) else {
                kept.release();
                return None;
            };
            Some((Box::new(Lean { scratch, kept }), buffer))
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
    // SAFETY: the caller's promise; the borrow ends with `f`, which runs no
    // JavaScript.
    let (lean, args) = unsafe { plain::args::<Lean, N>(env, info) }.ok_or(CallError::Malformed)?;
    f(lean, args)
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
    let env = Env::from_raw(env);
    match error {
        CallError::Malformed => misuse(&env),
        CallError::Failed(e) => throw(&env, &e),
    };
}
