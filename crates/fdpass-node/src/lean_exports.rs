//! `bindLean`: the lean functions of every module, bound to this
//! environment's scratch (see lean.rs). The top of the binding's layers: it
//! names the raw calls and the socket calls, which know nothing of it.

use std::ptr;

use napi::bindgen_prelude::Result;
use napi::{sys, Env};
use napi_derive::napi;

use crate::errors::napi_failure;
use crate::lean::Lean;
use crate::values::RawValue;

/// Creates the scratch ArrayBuffer of this environment and the lean
/// functions that use it.
#[napi(
    js_name = "bindLean",
    ts_return_type = "{ scratch: ArrayBuffer; sendFds(data: Uint8Array): void; sendScratch(): void; sendOwned(data: Uint8Array): void; sendOwnedScratch(): void; recvFds(): void; closeFds(): void; socketSend(data: Uint8Array): void; socketSendScratch(): void; socketRead(): void; socketPullReads(): void; socketReadInto(buffer: Uint8Array): void }"
)]
pub fn bind_lean(env: Env) -> Result<RawValue> {
    let raw = env.raw();
    let fail = || napi_failure(&env, "creating the lean bindings");
    // SAFETY: raw napi calls on the live env of this call, with values made
    // in it and out-pointers to locals. `lean` lives until the environment's
    // cleanup hook, after every call of the functions given it.
    unsafe {
        let Some((lean, buffer)) = Lean::create(raw) else {
            return Err(fail());
        };
        let mut object = ptr::null_mut();
        if sys::napi_create_object(raw, &mut object) != sys::Status::napi_ok
            || sys::napi_set_named_property(raw, object, c"scratch".as_ptr(), buffer) != sys::Status::napi_ok
        {
            return Err(fail());
        }
        for (name, callback) in crate::raw::LEAN_FUNCTIONS
            .iter()
            .chain(crate::socket::LEAN_FUNCTIONS)
            .chain(crate::socket::stream_read::LEAN_FUNCTIONS)
        {
            let mut function = ptr::null_mut();
            if sys::napi_create_function(
                raw,
                name.as_ptr(),
                name.count_bytes() as isize,
                Some(*callback),
                lean.cast(),
                &mut function,
            ) != sys::Status::napi_ok
                || sys::napi_set_named_property(raw, object, name.as_ptr(), function) != sys::Status::napi_ok
            {
                return Err(fail());
            }
        }
        Ok(RawValue(object))
    }
}
