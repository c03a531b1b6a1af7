//! Core errors thrown as Node.js-style `Error` objects (see
//! `napi_plumbing::errors`), and the errors of the binding's own.

use fdpass::error::ErrorClass;
use napi::{sys, Env};
use napi_plumbing::errors::{self as js, ErrorInfo};

/// Throws `err` into JavaScript and returns the napi error that tells the
/// generated glue an exception is already pending.
pub fn throw(env: &Env, err: &fdpass::Error) -> napi::Error {
    let message = err.to_string();
    // SAFETY: the live env of the current callback.
    unsafe { js::throw_error(env.raw(), &info(err, &message)) }
}

/// Builds the `Error` object of `err` without throwing it, to hand to a
/// callback.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope open.
pub unsafe fn build_error(env: sys::napi_env, err: &fdpass::Error) -> Option<sys::napi_value> {
    // SAFETY: the caller's promise.
    unsafe { js::build_error(env, &info(err, &err.to_string())) }
}

fn info<'a>(err: &'a fdpass::Error, message: &'a str) -> ErrorInfo<'a> {
    ErrorInfo {
        class: match err.class() {
            ErrorClass::Error => js::ErrorClass::Error,
            ErrorClass::TypeError => js::ErrorClass::TypeError,
            ErrorClass::RangeError => js::ErrorClass::RangeError,
        },
        code: err.code(),
        message,
        errno: err.errno(),
        syscall: err.syscall(),
    }
}

/// Throws an `Error` with `code` and `message` (a failure of fdpass's own,
/// with no errno) and returns the napi error that says it is pending.
pub fn throw_code(env: &Env, code: &str, message: &str) -> napi::Error {
    // SAFETY: the live env of the current callback.
    unsafe { js::throw_error(env.raw(), &ErrorInfo::plain(code, message)) }
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
    throw_code(
        env,
        "ERR_FDPASS_INTERNAL",
        "fdpass: a native call got arguments the JavaScript layer never makes (a mismatched build?): reinstall fdpass",
    )
}

/// Throws the error of a thread whose socket table is full.
pub fn too_many_sockets(env: &Env) -> napi::Error {
    throw_code(
        env,
        "ERR_FDPASS_TOO_MANY_SOCKETS",
        "fdpass: too many sockets on this thread (about a million): close sockets you no longer use",
    )
}
