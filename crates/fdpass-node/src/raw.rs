//! The raw, synchronous API: `socketPair`, `sendFds`, `recvFds`, `closeFds`,
//! `fdKind`.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::ptr;

use napi::bindgen_prelude::Result;
use napi::{sys, Env, Status};
use napi_derive::napi;

use crate::errors::throw;
use crate::values::{borrow_fd, fd_array, RawValue};

/// AF_UNIX socketpair of `kind`; both ends close-on-exec and blocking.
#[napi(js_name = "socketPair")]
pub fn socket_pair(env: Env, kind: String) -> Result<Vec<i32>> {
    let kind = fdpass::SocketType::from_name(&kind).map_err(|e| throw(&env, &e))?;
    let (a, b) = fdpass::socket_pair(kind).map_err(|e| throw(&env, &e))?;
    Ok(vec![a.into_raw_fd(), b.into_raw_fd()])
}

/// Sends `data` with `fds` attached; returns the bytes sent.
#[napi(js_name = "sendFds")]
pub fn send_fds(env: Env, socket: i32, data: &[u8], fds: Vec<i32>) -> Result<u32> {
    let socket = borrow_fd(&env, socket)?;
    fdpass::send_fds(socket, data, &fds)
        .map(|n| n as u32)
        .map_err(|e| throw(&env, &e))
}

thread_local! {
    /// Receive scratch space, reused across calls on this thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Receives one message (one recvmsg) and the fds that came with it.
#[napi(js_name = "recvFds", ts_return_type = "{ data: Buffer; fds: number[] }")]
pub fn recv_fds(env: Env, socket: i32, max_bytes: u32, max_fds: u32) -> Result<RawValue> {
    let socket = borrow_fd(&env, socket)?;
    SCRATCH.with_borrow_mut(|scratch| {
        let max_bytes = max_bytes as usize;
        if scratch.len() < max_bytes {
            scratch.resize(max_bytes, 0);
        }
        let received = fdpass::recv_fds(socket, &mut scratch[..max_bytes], max_fds as usize)
            .map_err(|e| throw(&env, &e))?;
        // SAFETY: raw napi calls on the live env of this callback. The fds stay
        // owned (and are closed on any failure) until the result object exists.
        unsafe {
            let raw = env.raw();
            let data = &scratch[..received.len];
            let mut buffer = ptr::null_mut();
            let mut object = ptr::null_mut();
            let fds = fd_array(raw, received.fds.iter().map(AsRawFd::as_raw_fd));
            let ok = sys::napi_create_buffer_copy(
                raw,
                data.len(),
                data.as_ptr().cast(),
                ptr::null_mut(),
                &mut buffer,
            ) == sys::Status::napi_ok
                && sys::napi_create_object(raw, &mut object) == sys::Status::napi_ok
                && fds.is_some_and(|fds| {
                    sys::napi_set_named_property(raw, object, c"data".as_ptr(), buffer)
                        == sys::Status::napi_ok
                        && sys::napi_set_named_property(raw, object, c"fds".as_ptr(), fds)
                            == sys::Status::napi_ok
                });
            if !ok {
                return Err(napi::Error::new(
                    Status::GenericFailure,
                    "recvFds: could not build the result",
                ));
            }
            for fd in received.fds {
                let _ = fd.into_raw_fd();
            }
            Ok(RawValue(object))
        }
    })
}

/// Closes every fd in one native call; reports the first failure.
#[napi(js_name = "closeFds")]
pub fn close_fds(env: Env, fds: Vec<i32>) -> Result<()> {
    fdpass::close_fds(&fds).map_err(|e| throw(&env, &e))
}

/// What an fd refers to.
#[napi(js_name = "fdKind")]
pub fn fd_kind(env: Env, fd: i32) -> Result<&'static str> {
    let fd = borrow_fd(&env, fd)?;
    fdpass::fd_kind(fd)
        .map(fdpass::FdKind::name)
        .map_err(|e| throw(&env, &e))
}

/// Whether close-on-exec is set on `fd` (used by the test suite where there
/// is no /proc to read it from).
#[napi(js_name = "isCloexec")]
pub fn is_cloexec(env: Env, fd: i32) -> Result<bool> {
    let fd = borrow_fd(&env, fd)?;
    fdpass::is_cloexec(fd).map_err(|e| throw(&env, &e))
}
