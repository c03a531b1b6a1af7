//! The lean functions of `FdStream`'s pulled reads (see `fdpass::conn`'s
//! pull mode): the stream reads straight into Buffers of its own, as Node's
//! own sockets do, instead of through a batch and the shared buffers. The
//! logic is the core's; this only passes the Buffer, the fds and the result.

use std::os::fd::AsRawFd;
use std::ptr;

use fdpass::conn::PullRead;
use fdpass::wire_constants::{PULL_END, PULL_WOULD_BLOCK};
use napi::{sys, Env};

use super::lookup;
use crate::errors::throw;
use crate::lean::{lean_call, throw_misuse, LeanFunction};
use crate::values::typed_array;

/// The lean functions of pulled stream reads.
pub const LEAN_FUNCTIONS: &[LeanFunction] = &[
    (c"socketPullReads", socket_pull_reads_lean),
    (c"socketReadInto", socket_read_into_lean),
];

/// `socketPullReads()`, integers [socket id]: from now on the socket reads
/// nothing itself when the loop reports input, but calls back with
/// `Ev.Readable` for JavaScript to pull with `socketReadInto`. The result is
/// 1 if the socket can (an unframed stream), else 0.
unsafe extern "C" fn socket_pull_reads_lean(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    let done = unsafe {
        lean_call::<0, ()>(env, info, |lean, []| {
            let shared = lookup(env, lean.int(0)?)?;
            let on = shared.state.borrow_mut().conn.set_pull_reads(true);
            lean.set_result(i32::from(on));
            Some(())
        })
    };
    // SAFETY: env is that of this running callback.
    done.map_or_else(|| unsafe { throw_misuse(env) }, |()| ptr::null_mut())
}

/// `socketReadInto(buffer)`, integers [socket id]: one non-blocking
/// `recvmsg` into `buffer` (a non-empty Uint8Array). The result is the
/// number of bytes read, `PULL_WOULD_BLOCK` or `PULL_END`; the fds that came
/// with the bytes are in scratch slots 1..=count (count in slot 0), marked
/// held until JavaScript takes them (see held_fds.rs). Errors are thrown
/// (the stream is unusable then).
unsafe extern "C" fn socket_read_into_lean(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: env and info are those of this running callback.
    let done = unsafe {
        lean_call::<1, ()>(env, info, |lean, [buffer]| {
            let shared = lookup(env, lean.int(0)?)?;
            // SAFETY: `buffer` is a value of this running call.
            let (data, len) = typed_array(env, buffer, sys::TypedarrayType::uint8_array)?;
            if data.is_null() || len == 0 {
                return None;
            }
            // SAFETY: the Uint8Array's bytes, valid for `len` bytes while no
            // JavaScript runs (none does until this call returns, so nothing
            // can detach or resize it); nothing else refers to them meanwhile.
            // Capped so that the count fits the i32 result.
            let buf = std::slice::from_raw_parts_mut(data.cast::<u8>(), len.min(i32::MAX as usize));
            let mut fds = Vec::new();
            let read = shared.state.borrow_mut().conn.read_into(buf, &mut fds);
            let result = match read {
                Ok(PullRead::Read(n)) => n as i32,
                Ok(PullRead::WouldBlock) => PULL_WOULD_BLOCK,
                Ok(PullRead::End) => PULL_END,
                Err(e) => {
                    throw(&Env::from_raw(env), &e);
                    return Some(());
                }
            };
            // At most the connection's max_fds (253), within the slots.
            let (_, slots, _) = lean.recv_areas(0)?;
            if fds.len() >= slots.len() {
                return None; // dropping `fds` closes them
            }
            slots[0] = fds.len() as i32;
            for (slot, fd) in slots[1..].iter_mut().zip(&fds) {
                *slot = fd.as_raw_fd();
            }
            crate::held_fds::hand_over(shared.buffers, &mut fds);
            lean.set_result(result);
            Some(())
        })
    };
    // SAFETY: env is that of this running callback.
    done.map_or_else(|| unsafe { throw_misuse(env) }, |()| ptr::null_mut())
}
