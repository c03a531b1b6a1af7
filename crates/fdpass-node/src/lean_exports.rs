//! `bindLean`: the lean functions of every module, bound to this
//! environment's scratch (see lean.rs). The top of the binding's layers: it
//! names the raw calls and the socket calls, which know nothing of it.

use napi::bindgen_prelude::Result;
use napi::Env;
use napi_derive::napi;
use napi_plumbing::plain;
use napi_plumbing::values::RawValue;

use crate::errors::napi_failure;
use crate::lean::Lean;

/// Creates the scratch ArrayBuffer of this environment and the lean
/// functions that use it.
#[napi(
    js_name = "bindLean",
    ts_return_type = "{ scratch: ArrayBuffer; sendFds(data: Uint8Array): void; sendScratch(): void; sendOwned(data: Uint8Array): void; sendOwnedScratch(): void; recvFds(): void; closeFds(): void; socketSend(data: Uint8Array): void; socketSendScratch(): void; socketRead(): void; socketPullReads(): void; socketReadInto(buffer: Uint8Array): void }"
)]
pub fn bind_lean(env: Env) -> Result<RawValue> {
    let functions = crate::raw::LEAN_FUNCTIONS
        .iter()
        .chain(crate::socket::LEAN_FUNCTIONS)
        .chain(crate::socket::stream_read::LEAN_FUNCTIONS)
        .copied();
    // SAFETY: the live env of this call; the buffer is a value of it.
    let object = unsafe {
        Lean::create(env.raw())
            .and_then(|(lean, buffer)| plain::bind(env.raw(), lean, &[(c"scratch", buffer)], functions))
    };
    object
        .map(RawValue)
        .ok_or_else(|| napi_failure(&env, "creating the lean bindings"))
}
