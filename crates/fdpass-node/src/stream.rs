//! What the stream face (`FdStream`, src/stream/) adds to a native socket:
//! half-closing it, and duplicating the fds of a write that has to wait its
//! turn. The TypeScript layer checks the arguments first.

use std::os::fd::AsRawFd;

use napi::bindgen_prelude::Result;
use napi::Env;
use napi_derive::napi;

use crate::errors::OrThrow;
use crate::values::borrow_fd;

/// `shutdown(fd, SHUT_WR)`: the peer reads the end of the stream.
#[napi(js_name = "shutdownWrite")]
pub fn shutdown_write(env: Env, fd: i32) -> Result<()> {
    let fd = borrow_fd(&env, fd)?;
    fdpass::half_close::shutdown_write(fd).or_throw(&env)
}

/// Close-on-exec duplicates of `fds`, owned by the caller and marked as held
/// for the copy of the JavaScript layer whose shared buffers are `buffers`
/// (see held_fds.rs), so that a worker terminated before they are sent has
/// them closed; on failure none is left open.
#[napi(js_name = "duplicateFds")]
pub fn duplicate_fds(env: Env, fds: Vec<i32>, buffers: i32) -> Result<Vec<i32>> {
    let mut owned = Vec::with_capacity(fds.len());
    for fd in fds {
        let fd = borrow_fd(&env, fd)?;
        // Those made so far are dropped (closed) with `owned` on failure.
        owned.push(fdpass::dup_cloexec(fd).or_throw(&env)?);
    }
    let raw = owned.iter().map(AsRawFd::as_raw_fd).collect();
    crate::held_fds::hand_over(usize::try_from(buffers).ok(), &mut owned);
    Ok(raw)
}
