//! The lean calls: the per-message functions (raw `sendFds`/`recvFds`/
//! `closeFds`, and `FdSocket`'s send and read) as plain napi callbacks.
//!
//! napi-rs's generated glue costs about 70 ns per call on the test machine
//! (it allocates borrow-tracking state on every call, and a class method also
//! unwraps `this` and checks its type tag), more than a whole close(2);
//! converting an fd array to a Vec, allocating and copying a Buffer and
//! building a result object with named properties cost more again. For one
//! fd and one byte that is more than the syscalls. So the hot calls are plain
//! napi callbacks, and integer arguments and results, fd numbers and small
//! payloads cross through one scratch ArrayBuffer per JavaScript environment,
//! which `src/lean.ts` reads and writes directly: a call takes only the
//! objects it needs (a socket handle, a large payload) as arguments, and
//! returns nothing (converting each integer argument and result costs about
//! as much as a plain store, times ten).
//!
//! Scratch layout (`src/lean.ts` uses the same constants):
//! - bytes [0, SCRATCH_FD_BYTES): i32 fd slots. Sends send slots
//!   [0, count), `closeFds` closes them; `recvFds` writes the fd count in
//!   slot 0 and the fds in slots 1..=count.
//! - bytes [SCRATCH_FD_BYTES, SCRATCH_LEN): received data, or the data to
//!   send for the `*Scratch` sends (small payloads, copied there by
//!   JavaScript: cheaper than looking up a Uint8Array's backing store).
//! - bytes [SCRATCH_INTS_AT, SCRATCH_LEN): SCRATCH_INT_SLOTS i32 integer
//!   arguments, written by JavaScript before the call; the call's result
//!   replaces the first one.

use std::ffi::{c_void, CStr};
use std::os::fd::RawFd;
use std::ptr;

use napi::bindgen_prelude::Result;
use napi::{sys, Env, Status};
use napi_derive::napi;

use crate::values::RawValue;

/// Fd slots in the scratch: the count and up to 253 fds (plus room to spare).
pub const SCRATCH_FD_SLOTS: usize = 256;
const SCRATCH_FD_BYTES: usize = SCRATCH_FD_SLOTS * std::mem::size_of::<i32>();
/// Bytes of data the scratch holds: `recvFds`'s default `maxBytes`. Larger
/// `maxBytes` take the allocating path.
pub const SCRATCH_DATA_BYTES: usize = 64 * 1024;
/// Integer argument slots (the first also takes the result).
const SCRATCH_INT_SLOTS: usize = 4;
const SCRATCH_INTS_AT: usize = SCRATCH_FD_BYTES + SCRATCH_DATA_BYTES;
const SCRATCH_LEN: usize = SCRATCH_INTS_AT + SCRATCH_INT_SLOTS * std::mem::size_of::<i32>();

/// What the lean callbacks of one environment share (their napi `data`).
pub struct Lean {
    /// The scratch ArrayBuffer's bytes, SCRATCH_LEN of them.
    scratch: *mut u8,
    /// Reused receive control buffer (zeroed by every receive).
    pub control: fdpass::cmsg::ControlBuffer,
    /// The env and the reference that keeps the scratch ArrayBuffer alive,
    /// released with the rest when the env ends.
    env: sys::napi_env,
    reference: sys::napi_ref,
}

impl Lean {
    /// The first `count` fd slots, if there are that many.
    ///
    /// # Safety
    /// The slice must be dropped before control returns to JavaScript (which
    /// may write the slots), and no other slice of the fd slots may be alive.
    pub unsafe fn fd_slots<'a>(&self, count: usize) -> Option<&'a mut [RawFd]> {
        // The ArrayBuffer's data is at least 8-aligned, so the i32 slots are aligned.
        (count <= SCRATCH_FD_SLOTS)
            .then(|| std::slice::from_raw_parts_mut(self.scratch.cast::<RawFd>(), count))
    }

    /// Integer argument `i` of the running call, as JavaScript wrote it.
    pub fn int(&self, i: usize) -> Option<i32> {
        // SAFETY: the slots lie inside the scratch (SCRATCH_INTS_AT is a
        // multiple of 4, so they are aligned); JavaScript does not run during
        // a lean call, so nothing writes them meanwhile.
        (i < SCRATCH_INT_SLOTS)
            .then(|| unsafe { self.scratch.add(SCRATCH_INTS_AT).cast::<i32>().add(i).read() })
    }

    /// Integer argument `i` as a count or length (refusing negative ones).
    pub fn count(&self, i: usize) -> Option<usize> {
        self.int(i).and_then(|n| usize::try_from(n).ok())
    }

    /// Sets the call's result, read by JavaScript once the call returns.
    pub fn set_result(&self, value: i32) {
        // SAFETY: the slot lies inside the scratch, as for `int`.
        unsafe { self.result_slot().write(value) }
    }

    /// Where the result goes: for a call that runs JavaScript (which may
    /// make lean calls of its own) before it has a result, and so must not
    /// hold on to its `Lean` meanwhile. The pointer is into the scratch's
    /// memory, valid as long as the environment.
    pub fn result_slot(&self) -> *mut i32 {
        // SAFETY: SCRATCH_INTS_AT is inside the scratch allocation.
        unsafe { self.scratch.add(SCRATCH_INTS_AT).cast::<i32>() }
    }

    /// The first `len` bytes of the data area, if it holds that many.
    ///
    /// # Safety
    /// As for [`Lean::fd_slots`]; the data area is disjoint from the fd slots.
    pub unsafe fn data<'a>(&self, len: usize) -> Option<&'a mut [u8]> {
        (len <= SCRATCH_DATA_BYTES)
            .then(|| std::slice::from_raw_parts_mut(self.scratch.add(SCRATCH_FD_BYTES), len))
    }
}

/// Frees an environment's [`Lean`] when the environment shuts down, after
/// which none of its callbacks can run.
unsafe extern "C" fn free_lean(arg: *mut c_void) {
    // SAFETY: `arg` is the Box::into_raw of bind_lean, registered once with
    // this hook, which napi calls once, while the env is still alive.
    let lean = Box::from_raw(arg.cast::<Lean>());
    sys::napi_delete_reference(lean.env, lean.reference);
}

/// A lean function: its name and its plain napi callback.
pub type LeanFunction = (&'static CStr, LeanCallback);
pub type LeanCallback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// Creates the scratch ArrayBuffer of this environment and the lean
/// functions that use it.
#[napi(
    js_name = "bindLean",
    ts_return_type = "{ scratch: ArrayBuffer; sendFds(data: Uint8Array): void; sendScratch(): void; sendOwned(data: Uint8Array): void; sendOwnedScratch(): void; recvFds(): void; closeFds(): void; socketSend(data: Uint8Array): void; socketSendScratch(): void; socketRead(): void }"
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
    // hence `scratch`, alive as long as the environment, which outlives the
    // functions given `lean`; `lean` itself is freed by the environment's
    // cleanup hook. The buffer never leaves `src/lean.ts`, so nothing can
    // detach it.
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
        for (name, callback) in crate::raw::LEAN_FUNCTIONS
            .iter()
            .chain(crate::socket::LEAN_FUNCTIONS)
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

/// The arguments of a lean call and its [`Lean`].
///
/// # Safety
/// `env` and `info` are those of a running lean callback.
pub unsafe fn lean_args<'a, const N: usize>(
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
    // per environment, and a lean call that runs JavaScript (socketRead,
    // which may deliver events) stops using this reference before it does,
    // so this is the only live reference to it.
    Some((&mut *data.cast::<Lean>(), argv))
}

/// The bytes of a Uint8Array argument, alive for the call (in which no
/// JavaScript runs).
///
/// # Safety
/// `env` and `value` are those of a running lean callback.
pub unsafe fn arg_bytes<'a>(env: sys::napi_env, value: sys::napi_value) -> Option<&'a [u8]> {
    let mut kind = 0;
    let mut len = 0;
    let mut bytes = ptr::null_mut();
    let mut arraybuffer = ptr::null_mut();
    let mut offset = 0;
    if sys::napi_get_typedarray_info(
        env,
        value,
        &mut kind,
        &mut len,
        &mut bytes,
        &mut arraybuffer,
        &mut offset,
    ) != sys::Status::napi_ok
        || kind != sys::TypedarrayType::uint8_array
    {
        return None;
    }
    Some(if len == 0 || bytes.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(bytes.cast::<u8>(), len)
    })
}

/// Throws the error the TypeScript layer should have made impossible.
///
/// # Safety
/// `env` is the env of a running lean callback.
pub unsafe fn throw_misuse(env: sys::napi_env) -> sys::napi_value {
    sys::napi_throw_error(env, ptr::null(), c"fdpass: bad lean call".as_ptr());
    ptr::null_mut()
}
