//! Throws core errors as Node.js-style `Error` objects: `code`, `errno`
//! (negative, as Node reports it) and `syscall`. napi's own conversion from an
//! io::Error would drop the errno, so the object is built here.

use std::ptr;

use napi::{sys, Env, Status};

/// Throws `err` into JavaScript and returns the napi error that tells the
/// generated glue an exception is already pending.
pub fn throw(env: &Env, err: &fdpass::Error) -> napi::Error {
    let message = err.to_string();
    let raw = env.raw();
    // SAFETY: the live env of the current callback, and a value made in it.
    let thrown = unsafe {
        build_error(raw, err, &message)
            .is_some_and(|error| sys::napi_throw(raw, error) == sys::Status::napi_ok)
    };
    pending(thrown, message)
}

/// Throws an `Error` with `code` and `message` (a failure of fdpass's own,
/// with no errno) and returns the napi error that says it is pending.
pub fn throw_code(env: &Env, code: &str, message: &str) -> napi::Error {
    // SAFETY: the live env of the current callback.
    pending(unsafe { throw_raw(env.raw(), code, message) }, message)
}

/// The napi error that tells the generated glue whether an exception is
/// pending (else it throws one itself, without errno).
fn pending(thrown: bool, message: impl Into<String>) -> napi::Error {
    let status = if thrown {
        Status::PendingException
    } else {
        Status::GenericFailure
    };
    napi::Error::new(status, message.into())
}

/// Throws a core failure with `?`: `fdpass_call().or_throw(&env)?`.
pub trait OrThrow<T> {
    /// The value, or the core error thrown into JavaScript (see [`throw`]).
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for fdpass::Result<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| throw(env, &e))
    }
}

/// Throws the error of a napi call that failed while `what`: the runtime is
/// out of memory or its environment is shutting down.
pub fn napi_failure(env: &Env, what: &str) -> napi::Error {
    throw_code(
        env,
        "ERR_FDPASS_RUNTIME",
        &format!(
            "fdpass: the JavaScript runtime refused a call while {what} (out of memory, or the environment is shutting down): retry once memory is available"
        ),
    )
}

/// Throws the error of an internal call (one only fdpass's own JavaScript
/// makes) with arguments that JavaScript never passes.
pub fn misuse(env: &Env) -> napi::Error {
    throw_code(env, "ERR_FDPASS_INTERNAL", MISUSE)
}

/// Throws the error of a thread whose socket table is full.
pub fn too_many_sockets(env: &Env) -> napi::Error {
    throw_code(
        env,
        "ERR_FDPASS_TOO_MANY_SOCKETS",
        "fdpass: too many sockets on this thread (about a million): close sockets you no longer use",
    )
}

/// The message of [`misuse`].
pub const MISUSE: &str =
    "fdpass: a native call got arguments the JavaScript layer never makes (a mismatched build?): reinstall fdpass";

/// Throws an `Error` with `code` and `message`; whether it is pending.
///
/// # Safety
/// `env` must be the live env of the current callback.
pub unsafe fn throw_raw(env: sys::napi_env, code: &str, message: &str) -> bool {
    // SAFETY: the caller's promise; values made here are used at once.
    unsafe {
        let (Some(code), Some(msg)) = (string(env, code), string(env, message)) else {
            return false;
        };
        let mut error = ptr::null_mut();
        sys::napi_create_error(env, code, msg, &mut error) == sys::Status::napi_ok
            && sys::napi_throw(env, error) == sys::Status::napi_ok
    }
}

/// Builds the `Error` object without throwing it (to reject a promise with).
///
/// # Safety
/// `env` must be the live env of the current thread.
pub unsafe fn build_error(env: sys::napi_env, err: &fdpass::Error, message: &str) -> Option<sys::napi_value> {
    // SAFETY: the caller's promise; every value used was made in this env,
    // and the out-pointers are locals.
    unsafe {
        let code = string(env, err.code())?;
        let msg = string(env, message)?;
        let mut error = ptr::null_mut();
        let status = match err.class() {
            fdpass::error::ErrorClass::TypeError => sys::napi_create_type_error(env, code, msg, &mut error),
            fdpass::error::ErrorClass::RangeError => sys::napi_create_range_error(env, code, msg, &mut error),
            fdpass::error::ErrorClass::Error => sys::napi_create_error(env, code, msg, &mut error),
        };
        if status != sys::Status::napi_ok {
            return None;
        }
        if let Some(errno) = err.errno() {
            let mut value = ptr::null_mut();
            sys::napi_create_int32(env, -errno, &mut value);
            sys::napi_set_named_property(env, error, c"errno".as_ptr(), value);
        }
        if let Some(syscall) = err.syscall() {
            if let Some(value) = string(env, syscall) {
                sys::napi_set_named_property(env, error, c"syscall".as_ptr(), value);
            }
        }
        Some(error)
    }
}

/// A JavaScript string of `s`.
///
/// # Safety
/// `env` must be the live env of the current callback.
unsafe fn string(env: sys::napi_env, s: &str) -> Option<sys::napi_value> {
    let mut value = ptr::null_mut();
    // SAFETY: `s` is valid for its length during the call, which copies it.
    let status =
        unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut value) };
    (status == sys::Status::napi_ok).then_some(value)
}
