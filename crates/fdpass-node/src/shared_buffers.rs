//! Buffers shared with JavaScript, one set per JavaScript thread, through
//! which the hot paths pass data without creating objects: received batches
//! are written into `scratch` (payloads) and `meta` (counts, lengths, fds).
//! (Sends go through the lean scratch, see lean.rs.) JavaScript reads a batch
//! before the call that wrote it returns, so one set serves every socket of
//! its thread.

use std::cell::RefCell;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::ptr;

use napi::bindgen_prelude::{Result, Unknown};
use napi::{sys, Env, JsValue, Status};
use napi_derive::napi;

struct Region<T> {
    ptr: *mut T,
    len: usize,
    reference: sys::napi_ref,
}

struct Buffers {
    scratch: Region<u8>,
    meta: Region<i32>,
}

thread_local! {
    static BUFFERS: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

/// Typed array data of `value`, kept alive by a reference that lives as long
/// as the environment.
unsafe fn region<T>(env: sys::napi_env, value: sys::napi_value) -> Result<Region<T>> {
    let mut kind = 0;
    let mut length = 0;
    let mut data = ptr::null_mut();
    let mut arraybuffer = ptr::null_mut();
    let mut offset = 0;
    let status = sys::napi_get_typedarray_info(
        env,
        value,
        &mut kind,
        &mut length,
        &mut data,
        &mut arraybuffer,
        &mut offset,
    );
    let mut reference = ptr::null_mut();
    if status != sys::Status::napi_ok
        || sys::napi_create_reference(env, value, 1, &mut reference) != sys::Status::napi_ok
    {
        return Err(napi::Error::new(Status::InvalidArg, "expected a typed array"));
    }
    Ok(Region {
        ptr: data.cast(),
        len: length,
        reference,
    })
}

/// Registers this thread's shared buffers (called once by the TypeScript layer).
#[napi(js_name = "initBuffers")]
pub fn init_buffers(env: Env, scratch: Unknown<'_>, meta: Unknown<'_>) -> Result<()> {
    // SAFETY: raw napi calls on the live env of this call; the references keep
    // the typed arrays (and so their memory, which V8 never moves) alive.
    let buffers = unsafe {
        Buffers {
            scratch: region(env.raw(), scratch.raw())?,
            meta: region(env.raw(), meta.raw())?,
        }
    };
    BUFFERS.with_borrow_mut(|b| *b = Some(buffers));
    // SAFETY: the hook forgets the buffers when this environment ends, so a
    // later environment on the same thread registers its own.
    unsafe { sys::napi_add_env_cleanup_hook(env.raw(), Some(forget), env.raw().cast()) };
    Ok(())
}

unsafe extern "C" fn forget(env: *mut std::ffi::c_void) {
    let env: sys::napi_env = env.cast();
    if let Some(b) = BUFFERS.with_borrow_mut(|b| b.take()) {
        // SAFETY: the references were made in this env, which is still alive
        // while its cleanup hooks run.
        unsafe {
            sys::napi_delete_reference(env, b.scratch.reference);
            sys::napi_delete_reference(env, b.meta.reference);
        }
    }
}

/// Writes a batch into the shared buffers and hands its fds over to
/// JavaScript. Returns false (and keeps everything) when it does not fit.
pub fn publish(data: &[u8], meta: &[i32], fds: &mut Vec<OwnedFd>) -> bool {
    BUFFERS.with_borrow(|b| {
        let Some(b) = b.as_ref() else { return false };
        if data.len() > b.scratch.len || meta.len() > b.meta.len {
            return false;
        }
        // SAFETY: both regions are live and large enough (checked above); the
        // sources are Rust-owned and do not overlap them.
        unsafe {
            ptr::copy_nonoverlapping(data.as_ptr(), b.scratch.ptr, data.len());
            ptr::copy_nonoverlapping(meta.as_ptr(), b.meta.ptr, meta.len());
        }
        for fd in fds.drain(..) {
            let _ = fd.into_raw_fd();
        }
        true
    })
}
