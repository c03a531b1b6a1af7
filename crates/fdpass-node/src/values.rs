//! Conversions between JavaScript values and core types.

use std::os::fd::{BorrowedFd, RawFd};

use fdpass::region::Region;
use napi::bindgen_prelude::Result;
use napi::{sys, Env};
use napi_plumbing::values::{Element, KeptValues};

use crate::errors::throw;

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

/// Keeps `value` (see [`KeptValues::typed_array`]) and returns its memory as
/// a core [`Region`], valid until `kept` is released.
///
/// # Safety
/// As for [`KeptValues::typed_array`]; the region is used only on this thread
/// (no JavaScript runs while the core uses it) and not after the release.
pub unsafe fn kept_region<T: Element>(kept: &mut KeptValues, value: sys::napi_value) -> Option<Region<T>> {
    // SAFETY: the caller's promise; the memory stays valid and in place while
    // `kept` holds the array, and JavaScript, its only other user, does not
    // run while the core uses it.
    unsafe {
        let (data, len) = kept.typed_array::<T>(value)?;
        Some(Region::new(data, len))
    }
}
