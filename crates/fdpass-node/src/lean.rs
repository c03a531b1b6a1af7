//! The lean calls' shared state: the per-message functions (raw `sendFds`/
//! `recvFds`/`closeFds`, and `FdSocket`'s send and read) are plain napi
//! callbacks that exchange integers, fd numbers and small payloads through
//! one scratch ArrayBuffer per JavaScript environment ([`Lean`]).
//!
//! napi-rs's generated glue costs about 70 ns per call on the test machine
//! (it allocates borrow-tracking state on every call, and a class method also
//! unwraps `this` and checks its type tag), more than a whole close(2);
//! converting an fd array to a Vec, allocating and copying a Buffer and
//! building a result object with named properties cost more again. For one
//! fd and one byte that is more than the syscalls. So the hot calls are plain
//! napi callbacks, and integer arguments and results, fd numbers and small
//! payloads cross through the scratch, which `src/lean.ts` reads and writes
//! directly: a call takes only the objects it needs (a socket handle, a large
//! payload) as arguments, and returns nothing (converting each integer
//! argument and result costs about as much as a plain store, times ten).
//!
//! Scratch layout (`fdpass::wire_constants`, shared with `src/lean.ts`):
//! - bytes [0, SCRATCH_FD_BYTES): i32 fd slots. Sends send slots
//!   [0, count), `closeFds` closes them; `recvFds` writes the fd count in
//!   slot 0 and the fds in slots 1..=count.
//! - bytes [SCRATCH_FD_BYTES, SCRATCH_INTS_AT): received data, or the data
//!   to send for the `*Scratch` sends (small payloads, copied there by
//!   JavaScript: cheaper than looking up a Uint8Array's backing store).
//! - bytes [SCRATCH_INTS_AT, SCRATCH_LEN): SCRATCH_INT_SLOTS i32 integer
//!   arguments, written by JavaScript before the call; the call's result
//!   replaces the first one.
//!
//! This module is below every user of the scratch: it knows no socket and no
//! raw call (the functions are assembled by `lean_exports.rs`).

use std::ffi::{c_void, CStr};
use std::os::fd::RawFd;
use std::ptr;

use fdpass::cmsg::ControlBuffer;
pub use fdpass::wire_constants::{SCRATCH_DATA_BYTES, SCRATCH_FD_SLOTS};
use fdpass::wire_constants::{SCRATCH_FD_BYTES, SCRATCH_INTS_AT, SCRATCH_INT_SLOTS, SCRATCH_LEN};
use napi::sys;

use crate::values::typed_array;

/// What the lean callbacks of one environment share (their napi `data`).
pub struct Lean {
    /// The scratch ArrayBuffer's bytes, SCRATCH_LEN of them, at least
    /// 8-aligned (V8's ArrayBuffer data), alive as long as the environment
    /// (see [`Lean::create`]).
    scratch: *mut u8,
    /// Reused receive control buffer (zeroed by every receive).
    control: ControlBuffer,
    /// The env and the reference that keeps the scratch ArrayBuffer alive,
    /// released with the rest when the env ends.
    env: sys::napi_env,
    reference: sys::napi_ref,
}

/// A lean function: its name and its plain napi callback.
pub type LeanFunction = (&'static CStr, LeanCallback);
/// A plain napi callback whose `data` is the environment's [`Lean`].
pub type LeanCallback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

impl Lean {
    /// The scratch ArrayBuffer of environment `env` and the [`Lean`] over
    /// it, freed by the environment's cleanup hook; None if napi fails.
    ///
    /// # Safety
    /// `env` must be the live env of the running call.
    pub unsafe fn create(env: sys::napi_env) -> Option<(*mut Lean, sys::napi_value)> {
        let mut data = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        let mut reference = ptr::null_mut();
        // SAFETY: raw napi calls on the live env, with out-pointers to
        // locals. The reference (count 1, released by the cleanup hook) keeps
        // the ArrayBuffer, hence `scratch`, alive as long as the environment;
        // the buffer never leaves `src/lean.ts`, so nothing can detach it.
        unsafe {
            if sys::napi_create_arraybuffer(env, SCRATCH_LEN, &mut data, &mut buffer) != sys::Status::napi_ok
                || data.is_null()
                || sys::napi_create_reference(env, buffer, 1, &mut reference) != sys::Status::napi_ok
            {
                return None;
            }
            let lean = Box::into_raw(Box::new(Lean {
                scratch: data.cast(),
                control: ControlBuffer::new(),
                env,
                reference,
            }));
            if sys::napi_add_env_cleanup_hook(env, Some(free_lean), lean.cast()) != sys::Status::napi_ok {
                free_lean(lean.cast());
                return None;
            }
            Some((lean, buffer))
        }
    }

    /// The first `count` fd slots, if there are that many.
    pub fn fd_slots(&self, count: usize) -> Option<&[RawFd]> {
        // SAFETY: in bounds of the scratch (count <= SCRATCH_FD_SLOTS), and
        // aligned (the scratch is). The borrow of `self` spans at most the
        // running lean call, during which no JavaScript writes the scratch
        // and no `&mut` to it exists (`recv_areas` takes `&mut self`).
        (count <= SCRATCH_FD_SLOTS)
            .then(|| unsafe { std::slice::from_raw_parts(self.scratch.cast::<RawFd>(), count) })
    }

    /// The first `len` bytes of the data area, if it holds that many.
    pub fn data(&self, len: usize) -> Option<&[u8]> {
        // SAFETY: as for fd_slots; the data area follows the fd slots.
        (len <= SCRATCH_DATA_BYTES)
            .then(|| unsafe { std::slice::from_raw_parts(self.scratch.add(SCRATCH_FD_BYTES), len) })
    }

    /// What a receive writes into: the first `len` bytes of the data area,
    /// every fd slot, and the control buffer.
    pub fn recv_areas(&mut self, len: usize) -> Option<(&mut [u8], &mut [RawFd], &mut ControlBuffer)> {
        if len > SCRATCH_DATA_BYTES {
            return None;
        }
        // SAFETY: both areas are in bounds, aligned and disjoint; `&mut self`
        // makes them the only references into the scratch for the borrow,
        // which spans at most the running lean call (no JavaScript runs).
        unsafe {
            let data = std::slice::from_raw_parts_mut(self.scratch.add(SCRATCH_FD_BYTES), len);
            let fds = std::slice::from_raw_parts_mut(self.scratch.cast::<RawFd>(), SCRATCH_FD_SLOTS);
            Some((data, fds, &mut self.control))
        }
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

    /// The bytes of a Uint8Array argument of the running call, for as long
    /// as the call's [`Lean`] is borrowed (no JavaScript runs meanwhile, so
    /// nothing can detach or resize it).
    pub fn bytes_arg(&self, env: sys::napi_env, value: sys::napi_value) -> Option<&[u8]> {
        // SAFETY: `env` and `value` are those of the running lean call (the
        // only place a `&Lean` is handed out, see `lean_call`); a Uint8Array's
        // bytes stay valid and unchanged while no JavaScript runs.
        unsafe {
            let (bytes, len) = typed_array(env, value, sys::TypedarrayType::uint8_array)?;
            Some(if len == 0 || bytes.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(bytes.cast::<u8>(), len)
            })
        }
    }
}

/// Frees an environment's [`Lean`] when the environment shuts down, after
/// which none of its callbacks can run.
unsafe extern "C" fn free_lean(arg: *mut c_void) {
    // SAFETY: `arg` is the Box::into_raw of Lean::create, registered once
    // with this hook, which napi calls once, while the env is still alive.
    unsafe {
        let lean = Box::from_raw(arg.cast::<Lean>());
        sys::napi_delete_reference(lean.env, lean.reference);
    }
}

/// Runs `f` with the [`Lean`] and the `N` arguments of a running lean call;
/// None if the call is malformed. `f` must not run JavaScript (a call that
/// does, like `socketRead`, reads its arguments here and runs it after).
///
/// # Safety
/// `env` and `info` are those of a running lean callback.
pub unsafe fn lean_call<const N: usize, R>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    f: impl FnOnce(&mut Lean, [sys::napi_value; N]) -> Option<R>,
) -> Option<R> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data = ptr::null_mut();
    // SAFETY: env and info are those of the running callback (the caller's
    // promise); the out-pointers are locals with room for N arguments.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    if status != sys::Status::napi_ok || argc < N || data.is_null() {
        return None;
    }
    // SAFETY: `data` is the Lean given to napi_create_function with every
    // lean function, alive until the environment shuts down; JavaScript is
    // single-threaded per environment and `f` runs none, so this is the only
    // live reference to it, and it ends with `f`.
    f(unsafe { &mut *data.cast::<Lean>() }, argv)
}

/// Throws the error the TypeScript layer should have made impossible.
///
/// # Safety
/// `env` is the env of a running lean callback.
pub unsafe fn throw_misuse(env: sys::napi_env) -> sys::napi_value {
    // SAFETY: the caller's promise.
    unsafe { crate::errors::throw_raw(env, "ERR_FDPASS_INTERNAL", crate::errors::MISUSE) };
    ptr::null_mut()
}
