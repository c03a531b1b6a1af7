//! Throws core errors as Node.js-style `Error` objects: `code`, `errno`
//! (negative, as Node reports it) and `syscall`. napi's own conversion from an
//! io::Error would drop the errno, so the object is built here.

use fdpass::error::ErrorClass;
use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::{sys, Env, JsError, JsRangeError, JsTypeError, Status};

/// Throws `err` into JavaScript and returns the napi error that tells the
/// generated glue an exception is already pending.
pub fn throw(env: &Env, err: &fdpass::Error) -> napi::Error {
    let message = err.to_string();
    // SAFETY: the live env of the current callback.
    pending(
        unsafe { throw_value(env.raw(), build_error(env.raw(), err, &message)) },
        message,
    )
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
    // SAFETY: the caller's promise.
    unsafe { throw_value(env, new_error(env, ErrorClass::Error, code, message)) }
}

/// Throws `error`, if there is one; whether it is pending.
///
/// # Safety
/// `env` must be the live env of the current callback.
unsafe fn throw_value(env: sys::napi_env, error: Option<sys::napi_value>) -> bool {
    // SAFETY: the caller's promise; `error` was made in this env.
    error.is_some_and(|error| unsafe { sys::napi_throw(env, error) } == sys::Status::napi_ok)
}

/// A new error object of `class` with `code` and `message`.
///
/// # Safety
/// `env` must be the live env of the current thread.
unsafe fn new_error(
    env: sys::napi_env,
    class: ErrorClass,
    code: &str,
    message: &str,
) -> Option<sys::napi_value> {
    let error = napi::Error::new(code, message);
    // SAFETY: the caller's promise.
    let value = unsafe {
        match class {
            ErrorClass::TypeError => JsTypeError::from(error).into_value(env),
            ErrorClass::RangeError => JsRangeError::from(error).into_value(env),
            ErrorClass::Error => JsError::from(error).into_value(env),
        }
    };
    (!value.is_null()).then_some(value)
}

/// Builds the `Error` object of `err` (with `errno`, negative as Node reports
/// it, and `syscall`) without throwing it, to reject a promise with or hand
/// to a callback.
///
/// # Safety
/// `env` must be the live env of the current thread.
pub unsafe fn build_error(env: sys::napi_env, err: &fdpass::Error, message: &str) -> Option<sys::napi_value> {
    // SAFETY: the caller's promise.
    let error = unsafe { new_error(env, err.class(), err.code(), message) }?;
    // Best effort, as Node's own errors: the error stands without them.
    let mut object = Object::from_raw(env, error);
    if let Some(errno) = err.errno() {
        let _ = object.set_named_property("errno", -errno);
    }
    if let Some(syscall) = err.syscall() {
        let _ = object.set_named_property("syscall", syscall);
    }
    Some(error)
}
