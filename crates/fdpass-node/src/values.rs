//! Small conversions between JavaScript values and core types.

use std::os::fd::{BorrowedFd, RawFd};

use napi::bindgen_prelude::{Result, ToNapiValue};
use napi::{sys, Env};

use crate::errors::throw;

/// A JavaScript value already built with raw napi calls, returned as is.
pub struct RawValue(pub sys::napi_value);

impl ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}

/// Borrows an fd number given by JavaScript, for the native call whose `env`
/// this is (the borrow cannot outlive it). Negative numbers are refused
/// before they can reach a syscall (the TypeScript layer refuses them first).
pub fn borrow_fd(env: &Env, fd: RawFd) -> Result<BorrowedFd<'_>> {
    if fd < 0 {
        return Err(throw(
            env,
            &fdpass::Error::InvalidArgument {
                reason: format!("fd must be a non-negative integer, got {fd}"),
            },
        ));
    }
    // SAFETY: the fd is only used for the duration of the native call that
    // received it; JavaScript keeps ownership. A closed fd yields EBADF.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// The data and length (in elements) of `value`, a typed array of `kind`.
///
/// # Safety
/// `env` and `value` must be the live env and a value of the running call.
pub unsafe fn typed_array(
    env: sys::napi_env,
    value: sys::napi_value,
    kind: sys::napi_typedarray_type,
) -> Option<(*mut std::ffi::c_void, usize)> {
    let mut actual = 0;
    let mut len = 0;
    let mut data = std::ptr::null_mut();
    let mut arraybuffer = std::ptr::null_mut();
    let mut offset = 0;
    // SAFETY: the caller's promise; the out-pointers are locals.
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env,
            value,
            &mut actual,
            &mut len,
            &mut data,
            &mut arraybuffer,
            &mut offset,
        )
    };
    (status == sys::Status::napi_ok && actual == kind).then_some((data, len))
}

/// A reference (count 1) that keeps `value` alive until it is deleted.
///
/// # Safety
/// As for [`typed_array`].
pub unsafe fn keep(env: sys::napi_env, value: sys::napi_value) -> Option<sys::napi_ref> {
    let mut reference = std::ptr::null_mut();
    // SAFETY: the caller's promise; the out-pointer is a local.
    let status = unsafe { sys::napi_create_reference(env, value, 1, &mut reference) };
    (status == sys::Status::napi_ok).then_some(reference)
}

/// Builds a JavaScript array of fd numbers.
///
/// # Safety
/// `env` must be the live env of the current thread.
pub unsafe fn fd_array(
    env: sys::napi_env,
    fds: impl ExactSizeIterator<Item = RawFd>,
) -> Option<sys::napi_value> {
    let mut array = std::ptr::null_mut();
    // SAFETY: raw napi calls on the caller's live env, with values made in
    // it and out-pointers to locals.
    unsafe {
        if sys::napi_create_array_with_length(env, fds.len(), &mut array) != sys::Status::napi_ok {
            return None;
        }
        for (i, fd) in fds.enumerate() {
            let mut value = std::ptr::null_mut();
            if sys::napi_create_int32(env, fd, &mut value) != sys::Status::napi_ok
                || sys::napi_set_element(env, array, i as u32, value) != sys::Status::napi_ok
            {
                return None;
            }
        }
    }
    Some(array)
}

/// Whether this env runs in Deno (a global named `Deno`), for the one place
/// where its napi differs in a way that aborts the process (see
/// shared_buffers.rs).
///
/// # Safety
/// `env` must be the live env of the current call, with a scope open.
pub unsafe fn is_deno(env: sys::napi_env) -> bool {
    let mut global = std::ptr::null_mut();
    let mut has = false;
    // SAFETY: raw napi calls on the caller's live env, with out-pointers to
    // locals and a NUL-terminated name.
    unsafe {
        sys::napi_get_global(env, &mut global) == sys::Status::napi_ok
            && sys::napi_has_named_property(env, global, c"Deno".as_ptr(), &mut has) == sys::Status::napi_ok
            && has
    }
}
