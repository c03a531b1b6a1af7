//! The raw, synchronous API: `socketPair`, `sendFds`, `recvFds`, `closeFds`,
//! `fdKind`.

use std::cell::RefCell;
use std::ffi::c_void;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
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

// The lean path. napi-rs's generated glue costs about 70 ns per call on the
// test machine (it allocates borrow-tracking state on every call), more than
// a whole close(2); converting an fd array to a Vec, allocating and copying a
// Buffer and building a result object with named properties cost more again.
// For one fd and one byte that is more than the syscalls. So the hot calls are
// plain napi callbacks, and fd numbers and received bytes cross through one
// scratch ArrayBuffer per JavaScript environment, which `src/raw.ts` reads and
// writes directly: each call passes and returns small integers only.
//
// Scratch layout (`src/raw.ts` uses the same constants):
// - bytes [0, SCRATCH_FD_BYTES): i32 fd slots. `sendFds` sends slots
//   [0, count), `closeFds` closes them; `recvFds` writes the fd count in
//   slot 0 and the fds in slots 1..=count.
// - bytes [SCRATCH_FD_BYTES, SCRATCH_LEN): received data, or the data to send
//   for `sendScratch` (small payloads, copied there by JavaScript: cheaper
//   than looking up a Uint8Array's backing store).

/// Fd slots in the scratch: the count and up to 253 fds (plus room to spare).
const SCRATCH_FD_SLOTS: usize = 256;
const SCRATCH_FD_BYTES: usize = SCRATCH_FD_SLOTS * std::mem::size_of::<i32>();
/// Bytes of received data the scratch holds: `recvFds`'s default `maxBytes`.
/// Larger `maxBytes` take the allocating path.
const SCRATCH_DATA_BYTES: usize = 64 * 1024;
const SCRATCH_LEN: usize = SCRATCH_FD_BYTES + SCRATCH_DATA_BYTES;

/// What the lean callbacks of one environment share (their napi `data`).
struct Lean {
    /// The scratch ArrayBuffer's bytes, SCRATCH_LEN of them.
    scratch: *mut u8,
    /// Reused receive control buffer (zeroed by every receive).
    control: fdpass::cmsg::ControlBuffer,
    /// The env and the reference that keeps the scratch ArrayBuffer alive,
    /// released with the rest when the env ends.
    env: sys::napi_env,
    reference: sys::napi_ref,
}

/// Frees an environment's [`Lean`] when the environment shuts down, after
/// which none of its callbacks can run.
unsafe extern "C" fn free_lean(arg: *mut c_void) {
    // SAFETY: `arg` is the Box::into_raw of bind_lean, registered once with
    // this hook, which napi calls once, while the env is still alive.
    let lean = Box::from_raw(arg.cast::<Lean>());
    sys::napi_delete_reference(lean.env, lean.reference);
}

/// Creates the scratch ArrayBuffer of this environment and the lean
/// functions that use it.
#[napi(
    js_name = "bindLean",
    ts_return_type = "{ scratch: ArrayBuffer; sendFds(socket: number, data: Uint8Array, fdCount: number): number; sendScratch(socket: number, dataLength: number, fdCount: number): number; recvFds(socket: number, maxBytes: number, maxFds: number): number; closeFds(count: number): void }"
)]
pub fn bind_lean(env: Env) -> Result<RawValue> {
    let raw = env.raw();
    let fail = || {
        napi::Error::new(
            Status::GenericFailure,
            "fdpass: could not create the lean bindings",
        )
    };
    // SAFETY: raw napi calls on the live env of this callback. The reference
    // (count 1, released by the env's cleanup hook) keeps the ArrayBuffer,
    // hence `scratch`, alive as long as the environment, which outlives the functions given `lean`;
    // `lean` itself is freed by the environment's cleanup hook. The buffer
    // never leaves `src/raw.ts`, so nothing can detach it.
    unsafe {
        let mut data = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        let mut reference = ptr::null_mut();
        if sys::napi_create_arraybuffer(raw, SCRATCH_LEN, &mut data, &mut buffer) != sys::Status::napi_ok
            || data.is_null()
            || sys::napi_create_reference(raw, buffer, 1, &mut reference) != sys::Status::napi_ok
        {
            return Err(fail());
        }
        let lean = Box::into_raw(Box::new(Lean {
            scratch: data.cast(),
            control: fdpass::cmsg::ControlBuffer::new(),
            env: raw,
            reference,
        }));
        if sys::napi_add_env_cleanup_hook(raw, Some(free_lean), lean.cast()) != sys::Status::napi_ok {
            free_lean(lean.cast());
            return Err(fail());
        }
        let mut object = ptr::null_mut();
        if sys::napi_create_object(raw, &mut object) != sys::Status::napi_ok
            || sys::napi_set_named_property(raw, object, c"scratch".as_ptr(), buffer) != sys::Status::napi_ok
        {
            return Err(fail());
        }
        let callbacks: [(&std::ffi::CStr, LeanCallback); 4] = [
            (c"sendFds", send_fds_lean),
            (c"sendScratch", send_scratch_lean),
            (c"recvFds", recv_fds_lean),
            (c"closeFds", close_fds_lean),
        ];
        for (name, callback) in callbacks {
            let mut function = ptr::null_mut();
            if sys::napi_create_function(
                raw,
                name.as_ptr(),
                name.count_bytes() as isize,
                Some(callback),
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

type LeanCallback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// The arguments of a lean call and its [`Lean`].
///
/// # Safety
/// `env` and `info` are those of a running lean callback.
unsafe fn lean_args<'a, const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Option<(&'a mut Lean, [sys::napi_value; N])> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data = ptr::null_mut();
    if sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        ptr::null_mut(),
        &mut data,
    ) != sys::Status::napi_ok
        || argc < N
        || data.is_null()
    {
        return None;
    }
    // SAFETY: `data` is the Lean given to napi_create_function in bind_lean,
    // alive until the environment shuts down; JavaScript is single-threaded
    // per environment and a lean call never re-enters another, so this is the
    // only reference to it for the duration of the call.
    Some((&mut *data.cast::<Lean>(), argv))
}

/// Reads a number argument that `src/raw.ts` has validated.
///
/// # Safety
/// `env` and `value` are those of a running lean callback.
unsafe fn arg_i32(env: sys::napi_env, value: sys::napi_value) -> Option<i32> {
    let mut out = 0;
    (sys::napi_get_value_int32(env, value, &mut out) == sys::Status::napi_ok).then_some(out)
}

/// Throws the error `src/raw.ts` should have made impossible.
///
/// # Safety
/// `env` is the env of a running lean callback.
unsafe fn throw_misuse(env: sys::napi_env, what: &std::ffi::CStr) -> sys::napi_value {
    sys::napi_throw_error(env, ptr::null(), what.as_ptr());
    ptr::null_mut()
}

/// A JavaScript number (null, hence undefined, if napi fails).
///
/// # Safety
/// `env` is the env of a running lean callback.
unsafe fn number(env: sys::napi_env, n: u32) -> sys::napi_value {
    let mut value = ptr::null_mut();
    sys::napi_create_uint32(env, n, &mut value);
    value
}

/// The end of both lean sends: `sendFds` on `socket`, returning the bytes
/// sent, or throwing the error (null return).
///
/// # Safety
/// `env` must be the env of the running callback.
unsafe fn send_and_report(env: sys::napi_env, socket: i32, data: &[u8], fds: &[RawFd]) -> sys::napi_value {
    let env = Env::from_raw(env);
    let socket = match borrow_fd(&env, socket) {
        Ok(socket) => socket,
        Err(_) => return ptr::null_mut(),
    };
    match fdpass::send_fds(socket, data, fds) {
        Ok(n) => number(env.raw(), n as u32),
        Err(e) => {
            throw(&env, &e);
            ptr::null_mut()
        }
    }
}

/// The first `count` fd slots of the scratch, if there are that many.
///
/// # Safety
/// `scratch` is a lean scratch; the slice must be dropped before control
/// returns to JavaScript (which may write the slots).
unsafe fn fd_slots<'a>(scratch: *mut u8, count: usize) -> Option<&'a mut [RawFd]> {
    // The ArrayBuffer's data is at least 8-aligned, so the i32 slots are aligned.
    (count <= SCRATCH_FD_SLOTS).then(|| std::slice::from_raw_parts_mut(scratch.cast::<RawFd>(), count))
}

/// `sendFds(socket, data, fdCount)`: sends `data` with the fds in scratch
/// slots [0, fdCount); returns the bytes sent.
unsafe extern "C" fn send_fds_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): env and info are those of this running callback.
    let Some((lean, [socket, data, count])) = lean_args::<3>(env, info) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let (Some(socket), Some(count)) = (arg_i32(env, socket), arg_i32(env, count)) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let mut kind = 0;
    let mut len = 0;
    let mut bytes = ptr::null_mut();
    let mut arraybuffer = ptr::null_mut();
    let mut offset = 0;
    if sys::napi_get_typedarray_info(
        env,
        data,
        &mut kind,
        &mut len,
        &mut bytes,
        &mut arraybuffer,
        &mut offset,
    ) != sys::Status::napi_ok
        || kind != sys::TypedarrayType::uint8_array
    {
        return throw_misuse(env, c"fdpass: bad lean call");
    }
    // The bytes of the caller's Uint8Array (never the scratch), alive during
    // this call, in which no JavaScript runs.
    let data: &[u8] = if len == 0 || bytes.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(bytes.cast::<u8>(), len)
    };
    let Some(fds) = usize::try_from(count)
        .ok()
        .and_then(|c| fd_slots(lean.scratch, c))
    else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    send_and_report(env, socket, data, fds)
}

/// `sendScratch(socket, dataLength, fdCount)`: sends scratch data bytes
/// [0, dataLength) with the fds in scratch slots [0, fdCount).
unsafe extern "C" fn send_scratch_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): env and info are those of this running callback.
    let Some((lean, [socket, len, count])) = lean_args::<3>(env, info) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let (Some(socket), Some(len), Some(count)) =
        (arg_i32(env, socket), arg_i32(env, len), arg_i32(env, count))
    else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let Some(len) = usize::try_from(len).ok().filter(|&len| len <= SCRATCH_DATA_BYTES) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let Some(fds) = usize::try_from(count)
        .ok()
        .and_then(|c| fd_slots(lean.scratch, c))
    else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    // Disjoint from the fd slots; no JavaScript runs during this call.
    let data = std::slice::from_raw_parts(lean.scratch.add(SCRATCH_FD_BYTES), len);
    send_and_report(env, socket, data, fds)
}

/// `recvFds(socket, maxBytes, maxFds)`: receives into the scratch; returns
/// the byte count; the fd count is in slot 0 and the fds in slots
/// 1..=count, owned by the caller.
unsafe extern "C" fn recv_fds_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): env and info are those of this running callback.
    let Some((lean, [socket, max_bytes, max_fds])) = lean_args::<3>(env, info) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let (Some(socket), Some(max_bytes), Some(max_fds)) = (
        arg_i32(env, socket),
        arg_i32(env, max_bytes),
        arg_i32(env, max_fds),
    ) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let (Ok(max_bytes), Ok(max_fds)) = (usize::try_from(max_bytes), usize::try_from(max_fds)) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    if max_bytes > SCRATCH_DATA_BYTES || max_fds >= SCRATCH_FD_SLOTS {
        return throw_misuse(env, c"fdpass: bad lean call");
    }
    // The fd slots and the data area are disjoint parts of the scratch, and
    // no JavaScript runs during this call.
    let Some(slots) = fd_slots(lean.scratch, SCRATCH_FD_SLOTS) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let data = std::slice::from_raw_parts_mut(lean.scratch.add(SCRATCH_FD_BYTES), max_bytes);
    let (count_slot, fd_out) = slots.split_at_mut(1);
    let env = Env::from_raw(env);
    let socket = match borrow_fd(&env, socket) {
        Ok(socket) => socket,
        Err(_) => return ptr::null_mut(),
    };
    match fdpass::message::recv_fds_into(socket, data, max_fds, &mut lean.control, fd_out) {
        Ok(received) => {
            count_slot[0] = received.fd_count as i32;
            number(env.raw(), received.len as u32)
        }
        Err(e) => {
            throw(&env, &e);
            ptr::null_mut()
        }
    }
}

/// `closeFds(count)`: closes the fds in scratch slots [0, count).
unsafe extern "C" fn close_fds_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): env and info are those of this running callback.
    let Some((lean, [count])) = lean_args::<1>(env, info) else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    let Some(fds) = arg_i32(env, count)
        .and_then(|c| usize::try_from(c).ok())
        .and_then(|c| fd_slots(lean.scratch, c))
    else {
        return throw_misuse(env, c"fdpass: bad lean call");
    };
    if let Err(e) = fdpass::message::close_all(fds) {
        throw(&Env::from_raw(env), &e);
    }
    ptr::null_mut()
}
