//! The lean functions of `FdStream`'s pulled reads (see `fdpass::conn`'s
//! pull mode): the stream reads straight into Buffers of its own, as Node's
//! own sockets do, instead of through a batch and the shared buffers. The
//! logic is the core's; this only passes the Buffer, the fds and the result.

use fdpass::conn::PullRead;
use fdpass::scratch::Malformed;
use fdpass::wire_constants::{PULL_END, PULL_WOULD_BLOCK};
use napi::sys;

use super::lean_calls::socket;
use crate::lean::{finish, lean_call};
use napi_plumbing::plain::Function;
use napi_plumbing::values::typed_array;

/// The lean functions of pulled stream reads.
pub const LEAN_FUNCTIONS: &[Function] = &[
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
            let shared = socket(env, lean.scratch.int(0)?)?;
            let on = shared.value().borrow_mut().conn.set_pull_reads(true);
            lean.scratch.set_result(i32::from(on));
            Ok(())
        })
    };
    // SAFETY: env is that of this running callback.
    unsafe { finish(env, done) }
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
            let shared = socket(env, lean.scratch.int(0)?)?;
            // SAFETY: `buffer` is a value of this running call.
            let (data, len) = typed_array(env, buffer, sys::TypedarrayType::uint8_array).ok_or(Malformed)?;
            if data.is_null() || len == 0 {
                return Err(Malformed.into());
            }
            // SAFETY: the Uint8Array's bytes, valid for `len` bytes while no
            // JavaScript runs (none does until this call returns, so nothing
            // can detach or resize it); nothing else refers to them meanwhile.
            // Capped so that the count fits the i32 result.
            let buf = std::slice::from_raw_parts_mut(data.cast::<u8>(), len.min(i32::MAX as usize));
            let mut fds = Vec::new();
            let mut socket = shared.value().borrow_mut();
            let read = socket.conn.read_into(buf, &mut fds);
            let result = match read {
                Ok(PullRead::Read(n)) => n as i32,
                Ok(PullRead::WouldBlock) => PULL_WOULD_BLOCK,
                Ok(PullRead::End) => PULL_END,
                Err(e) => return Err(e.into()),
            };
            // At most the connection's max_fds (253), within the slots; if
            // not, dropping `fds` closes them.
            lean.scratch.set_received_fds(&fds)?;
            crate::held_fds::hand_over(socket.buffers, &mut fds);
            lean.scratch.set_result(result);
            Ok(())
        })
    };
    // SAFETY: env is that of this running callback.
    unsafe { finish(env, done) }
}
