//! The raw, synchronous API: `socketPair`, `sendFds`, `recvFds`, `closeFds`,
//! `fdKind`.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::ptr;

use napi::bindgen_prelude::Result;
use napi::{sys, Env};
use napi_derive::napi;

use crate::errors::{napi_failure, throw};
use crate::lean::{lean_call, throw_misuse, Lean, LeanFunction, SCRATCH_FD_SLOTS};
use crate::values::{borrow_fd, fd_array, RawValue};

/// AF_UNIX socketpair of `kind`; both ends close-on-exec and blocking.
#[napi(js_name = "socketPair")]
pub fn socket_pair(env: Env, kind: String) -> Result<Vec<i32>> {
    let kind = fdpass::SocketType::from_name(&kind).map_err(|e| throw(&env, &e))?;
    let (a, b) = fdpass::socket_pair(kind).map_err(|e| throw(&env, &e))?;
    Ok(vec![a.into_raw_fd(), b.into_raw_fd()])
}

/// Receive buffers up to this size are kept for the next call on the thread.
/// A call with a larger `maxBytes` gets a buffer of its own that is freed when
/// it returns: one receive with `maxBytes: 2 ** 29` must not pin 512 MiB for
/// the life of the thread. That buffer is a zeroed allocation of that size,
/// which the allocator serves with pages the kernel zeroes on first touch, so
/// only the bytes that arrive cost memory even while the call runs.
const KEPT_SCRATCH_BYTES: usize = 256 * 1024;

thread_local! {
    /// Receive scratch space of at most KEPT_SCRATCH_BYTES, reused across calls on this thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Receives one message (one recvmsg) and the fds that came with it.
#[napi(js_name = "recvFds", ts_return_type = "{ data: Buffer; fds: number[] }")]
pub fn recv_fds(env: Env, socket: i32, max_bytes: u32, max_fds: u32) -> Result<RawValue> {
    let socket = borrow_fd(&env, socket)?;
    let max_bytes = max_bytes as usize;
    if max_bytes > KEPT_SCRATCH_BYTES {
        return recv_into(&env, socket, &mut vec![0; max_bytes], max_fds);
    }
    SCRATCH.with_borrow_mut(|scratch| {
        if scratch.len() < max_bytes {
            scratch.resize(max_bytes, 0);
        }
        recv_into(&env, socket, &mut scratch[..max_bytes], max_fds)
    })
}

/// One recvmsg into `buf`; the result object holds a copy of what arrived.
fn recv_into(env: &Env, socket: BorrowedFd<'_>, buf: &mut [u8], max_fds: u32) -> Result<RawValue> {
    let received = fdpass::recv_fds(socket, buf, max_fds as usize).map_err(|e| throw(env, &e))?;
    // SAFETY: raw napi calls on the live env of this callback. The fds stay
    // owned (and are closed on any failure) until the result object exists.
    unsafe {
        let raw = env.raw();
        let data = &buf[..received.len];
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
                sys::napi_set_named_property(raw, object, c"data".as_ptr(), buffer) == sys::Status::napi_ok
                    && sys::napi_set_named_property(raw, object, c"fds".as_ptr(), fds) == sys::Status::napi_ok
            });
        if !ok {
            // The fds are closed as `received` drops.
            return Err(napi_failure(env, "building recvFds's result"));
        }
        for fd in received.fds {
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

/// The lean functions of the raw API (see lean.rs).
///
/// The `Owned` sends skip the per-send `AF_UNIX` check: `SyncSocket` checked
/// its fd once when it took ownership of it.
pub const LEAN_FUNCTIONS: &[LeanFunction] = &[
    (c"sendFds", send_fds_lean::<true>),
    (c"sendScratch", send_scratch_lean::<true>),
    (c"sendOwned", send_fds_lean::<false>),
    (c"sendOwnedScratch", send_scratch_lean::<false>),
    (c"recvFds", recv_fds_lean),
    (c"closeFds", close_fds_lean),
];

/// The end of every lean send: sends on `socket` (checking first that it is
/// `AF_UNIX` when `CHECK_UNIX`), setting the bytes sent as the result, or
/// throwing the error.
fn send_and_report<const CHECK_UNIX: bool>(
    env: sys::napi_env,
    lean: &Lean,
    socket: i32,
    data: &[u8],
    fds: &[RawFd],
) {
    let env = Env::from_raw(env);
    let Ok(socket) = borrow_fd(&env, socket) else {
        return; // thrown
    };
    let sent = if CHECK_UNIX {
        fdpass::send_fds(socket, data, fds)
    } else {
        fdpass::send_fds_on_unix(socket, data, fds)
    };
    match sent {
        // A single sendmsg moves less than 2 GiB (Linux caps it below i32::MAX).
        Ok(n) => lean.set_result(i32::try_from(n).unwrap_or(i32::MAX)),
        Err(e) => {
            throw(&env, &e);
        }
    }
}

/// The napi result of a lean call: undefined, after throwing the misuse
/// error if the call was malformed (`None`).
///
/// # Safety
/// `env` is the env of the running lean callback.
unsafe fn finish(env: sys::napi_env, done: Option<()>) -> sys::napi_value {
    if done.is_none() {
        // SAFETY: the caller's promise.
        return unsafe { throw_misuse(env) };
    }
    ptr::null_mut()
}

/// `sendFds(data)` (and `sendOwned`), integers [socket, fdCount]: sends
/// `data` (the caller's Uint8Array, never the scratch) with the fds in
/// scratch slots [0, fdCount); the result is the bytes sent.
unsafe extern "C" fn send_fds_lean<const CHECK_UNIX: bool>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    unsafe {
        let done = lean_call::<1, ()>(env, info, |lean, [data]| {
            let socket = lean.int(0)?;
            let data = lean.bytes_arg(env, data)?;
            let fds = lean.fd_slots(lean.count(1)?)?;
            send_and_report::<CHECK_UNIX>(env, lean, socket, data, fds);
            Some(())
        });
        finish(env, done)
    }
}

/// `sendScratch()` (and `sendOwnedScratch`), integers [socket, dataLength,
/// fdCount]: sends scratch data bytes [0, dataLength) with the fds in
/// scratch slots [0, fdCount); the result is the bytes sent.
unsafe extern "C" fn send_scratch_lean<const CHECK_UNIX: bool>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    unsafe {
        let done = lean_call::<0, ()>(env, info, |lean, []| {
            let socket = lean.int(0)?;
            let data = lean.data(lean.count(1)?)?;
            let fds = lean.fd_slots(lean.count(2)?)?;
            send_and_report::<CHECK_UNIX>(env, lean, socket, data, fds);
            Some(())
        });
        finish(env, done)
    }
}

/// `recvFds()`, integers [socket, maxBytes, maxFds]: receives into the
/// scratch; the result is the byte count; the fd count is in slot 0 and the
/// fds in slots 1..=count, owned by the caller.
unsafe extern "C" fn recv_fds_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    unsafe {
        let done = lean_call::<0, ()>(env, info, |lean, []| {
            let socket = lean.int(0)?;
            let len = lean.count(1)?;
            let max_fds = lean.count(2).filter(|&n| n < SCRATCH_FD_SLOTS)?;
            let result_slot = lean.result_slot();
            let (data, slots, control) = lean.recv_areas(len)?;
            let (count_slot, fd_out) = slots.split_at_mut(1);
            let env = Env::from_raw(env);
            let Ok(socket) = borrow_fd(&env, socket) else {
                return Some(()); // thrown
            };
            match fdpass::message::recv_fds_into(socket, data, max_fds, control, fd_out) {
                Ok(received) => {
                    count_slot[0] = received.fd_count as i32;
                    // At most SCRATCH_DATA_BYTES.
                    result_slot.write(received.len as i32);
                }
                Err(e) => {
                    throw(&env, &e);
                }
            }
            Some(())
        });
        finish(env, done)
    }
}

/// `closeFds()`, integers [count]: closes the fds in scratch slots [0, count).
unsafe extern "C" fn close_fds_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    unsafe {
        let done = lean_call::<0, ()>(env, info, |lean, []| {
            let fds = lean.fd_slots(lean.count(0)?)?;
            if let Err(e) = fdpass::message::close_all(fds) {
                throw(&Env::from_raw(env), &e);
            }
            Some(())
        });
        finish(env, done)
    }
}
