//! Node-style error objects: an `Error`, `TypeError` or `RangeError` with a
//! `code`, and for a failed system call its `errno` (negative, as Node
//! reports it) and `syscall`. napi's own conversion from an io::Error would
//! drop the errno, so the object is built here.

use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::{sys, JsError, JsRangeError, JsTypeError, Status};

/// The JavaScript class of an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Error,
    TypeError,
    RangeError,
}

/// What a Node-style error says.
pub struct ErrorInfo<'a> {
    pub class: ErrorClass,
    pub code: &'a str,
    pub message: &'a str,
    /// The errno of a failed system call (positive; set negated).
    pub errno: Option<i32>,
    pub syscall: Option<&'a str>,
}

impl<'a> ErrorInfo<'a> {
    /// An `Error` with `code` and `message`, and no errno.
    pub fn plain(code: &'a str, message: &'a str) -> Self {
        ErrorInfo {
            class: ErrorClass::Error,
            code,
            message,
            errno: None,
            syscall: None,
        }
    }
}

/// Builds the error object without throwing it, to reject a promise with or
/// hand to a callback; None if the runtime refuses.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope open.
pub unsafe fn build_error(env: sys::napi_env, info: &ErrorInfo<'_>) -> Option<sys::napi_value> {
    let error = napi::Error::new(info.code, info.message);
    // SAFETY: the caller's promise.
    let value = unsafe {
        match info.class {
            ErrorClass::TypeError => JsTypeError::from(error).into_value(env),
            ErrorClass::RangeError => JsRangeError::from(error).into_value(env),
            ErrorClass::Error => JsError::from(error).into_value(env),
        }
    };
    if value.is_null() {
        return None;
    }
    // Best effort, as Node's own errors: the error stands without them.
    let mut object = Object::from_raw(env, value);
    if let Some(errno) = info.errno {
        let _ = object.set_named_property("errno", -errno);
    }
    if let Some(syscall) = info.syscall {
        let _ = object.set_named_property("syscall", syscall);
    }
    Some(value)
}

/// Throws the error into JavaScript and returns the napi error that tells
/// napi-rs's generated glue an exception is pending (else, if the runtime
/// refused, one it throws itself, with the message but no code).
///
/// # Safety
/// `env` must be the live env of the current callback.
pub unsafe fn throw_error(env: sys::napi_env, info: &ErrorInfo<'_>) -> napi::Error {
    // SAFETY: the caller's promise; the error is made in this env.
    let thrown = unsafe {
        build_error(env, info).is_some_and(|error| sys::napi_throw(env, error) == sys::Status::napi_ok)
    };
    let status = if thrown {
        Status::PendingException
    } else {
        Status::GenericFailure
    };
    napi::Error::new(status, info.message.to_owned())
}
