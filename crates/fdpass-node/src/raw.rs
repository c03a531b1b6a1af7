//! The raw, synchronous API: `socketPair`, `sendFds`, `recvFds`, `closeFds`,
//! `fdKind`.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::ptr;

use fdpass::scratch::UnixCheck;
use napi::bindgen_prelude::Result;
use napi::{sys, Env};
use napi_derive::napi;

use crate::errors::{napi_failure, throw};
use crate::lean::{finish, lean_call, send_call};
use crate::values::borrow_fd;
use napi_plumbing::plain::Function;
use napi_plumbing::values::{int_array, object, RawValue};

/// AF_UNIX socketpair of `kind`; both ends close-on-exec and blocking.
#[napi(js_name = "socketPair")]
pub fn socket_pair(env: Env, kind: String) -> Result<Vec<i32>> {
    let kind = fdpass::SocketType::from_name(&kind).map_err(|e| throw(&env, &e))?;
    let (a, b) = fdpass::socket_pair(kind).map_err(|e| throw(&env, &e))?;
    Ok(vec![a.into_raw_fd(), b.into_raw_fd()])
}

/// Receives one message (one recvmsg) and the fds that came with it: the
/// path of a `maxBytes` larger than the scratch's data area, into the core's
/// receive buffer (`fdpass::receive_buffer`: a kept buffer up to 256 KiB, a
/// buffer of its own above, freed when the call returns).
#[napi(js_name = "recvFds", ts_return_type = "{ data: Buffer; fds: number[] }")]
pub fn recv_fds(env: Env, socket: i32, max_bytes: u32, max_fds: u32) -> Result<RawValue> {
    let socket = borrow_fd(&env, socket)?;
    fdpass::receive_buffer::recv_fds_buffered(socket, max_bytes as usize, max_fds as usize, |data, fds| {
        result_object(&env, data, fds)
    })
    .map_err(|e| throw(&env, &e))?
}

/// `{ data, fds }`: a copy of `data`, and the fds, owned by the caller once
/// the object exists (closed on any failure before).
fn result_object(env: &Env, data: &[u8], fds: Vec<OwnedFd>) -> Result<RawValue> {
    // SAFETY: raw napi calls on the live env of this callback, with
    // out-pointers to locals.
    unsafe {
        let raw = env.raw();
        let mut buffer = ptr::null_mut();
        let array = int_array(raw, fds.iter().map(AsRawFd::as_raw_fd));
        let copied = sys::napi_create_buffer_copy(
            raw,
            data.len(),
            data.as_ptr().cast(),
            ptr::null_mut(),
            &mut buffer,
        ) == sys::Status::napi_ok;
        let object = array
            .filter(|_| copied)
            .and_then(|array| object(raw, &[(c"data", buffer), (c"fds", array)]));
        let Some(object) = object else {
            // The fds are closed as `fds` drops.
            return Err(napi_failure(env, "building recvFds's result"));
        };
        for fd in fds {
            let _ = fd.into_raw_fd();
        }
        Ok(RawValue(object))
    }
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

/// The lean functions of the raw API (see lean.rs and `fdpass::scratch`).
///
/// `sendFds(data)` and `sendOwned(data)`, integers [socket, fdCount], send
/// the caller's Uint8Array; `sendScratch()` and `sendOwnedScratch()`,
/// integers [socket, dataLength, fdCount], send data from the scratch. All
/// send the fds in slots [0, fdCount); the result is the bytes sent. The
/// `Owned` sends skip the per-send `AF_UNIX` check: `SyncSocket` checked its
/// fd once when it took ownership of it.
///
/// `recvFds()`, integers [socket, maxBytes, maxFds]: receives into the
/// scratch; the result is the byte count; the fd count is in slot 0 and the
/// fds in slots 1..=count, owned by the caller. `closeFds()`, integers
/// [count]: closes the fds in slots [0, count).
pub const LEAN_FUNCTIONS: &[Function] = &[
    (c"sendFds", send_lean::<true, true>),
    (c"sendScratch", send_lean::<false, true>),
    (c"sendOwned", send_lean::<true, false>),
    (c"sendOwnedScratch", send_lean::<false, false>),
    (c"recvFds", recv_fds_lean),
    (c"closeFds", close_fds_lean),
];

/// The four sends: the data is the call's argument when `EXTERNAL`, in the
/// scratch otherwise; the socket is checked to be `AF_UNIX` when `CHECK_UNIX`.
unsafe extern "C" fn send_lean<const EXTERNAL: bool, const CHECK_UNIX: bool>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let check = if CHECK_UNIX {
        UnixCheck::EverySend
    } else {
        UnixCheck::Checked
    };
    // SAFETY: env and info are those of this running callback.
    unsafe { send_call::<EXTERNAL>(env, info, |lean, data| lean.scratch.send(data, check)) }
}

unsafe extern "C" fn recv_fds_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    unsafe { finish(env, lean_call::<0, ()>(env, info, |lean, []| lean.scratch.recv())) }
}

unsafe extern "C" fn close_fds_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    unsafe {
        finish(
            env,
            lean_call::<0, ()>(env, info, |lean, []| lean.scratch.close_slots()),
        )
    }
}
