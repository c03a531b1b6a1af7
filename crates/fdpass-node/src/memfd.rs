//! `memfd(name, size)`: anonymous shared memory as an fd (see the core's
//! `memfd` module). The TypeScript layer checks the arguments first.

use std::os::fd::IntoRawFd;

use napi::bindgen_prelude::Result;
use napi::Env;
use napi_derive::napi;

use crate::errors::{throw, OrThrow};

/// Creates anonymous shared memory of `size` bytes; returns its fd, owned by
/// the caller.
#[napi(js_name = "memfd")]
pub fn memfd(env: Env, name: String, size: i64) -> Result<i32> {
    let size = u64::try_from(size).map_err(|_| {
        throw(
            &env,
            &fdpass::Error::InvalidArgument {
                reason: format!("the memfd size must not be negative, got {size}"),
            },
        )
    })?;
    let fd = fdpass::memfd(&name, size).or_throw(&env)?;
    Ok(fd.into_raw_fd())
}
