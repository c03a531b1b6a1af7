//! The fds a thread's JavaScript holds on its user's behalf (the core's
//! [`HeldFds`]): every fd of a received batch, from the moment this side
//! hands the batch over until JavaScript hands the message to the user's code
//! (or closes its fds). Each copy of the TypeScript layer has one byte per fd
//! number in a Uint8Array over an ArrayBuffer of its own
//! (`src/internal/held-fds.ts`), under the id of its shared buffers (see
//! shared_buffers.rs). When the environment ends without JavaScript running
//! again — a worker thread terminated at any point, even in the middle of a
//! batch — its cleanup hook closes every fd still marked. (Sockets, queued
//! sends and fds inside the frame decoder are native and close with their
//! socket.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;

use fdpass::held_fds::HeldFds;
use napi::bindgen_prelude::{Result, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;

use crate::errors::misuse;
use crate::values::kept_region;
use napi_plumbing::values::KeptValues;

/// The marks of one copy, and the reference that keeps their array alive.
struct Marks {
    held: HeldFds,
    array: KeptValues,
}

thread_local! {
    /// The marks of each copy on this thread, by the id of its shared buffers.
    static MARKS: RefCell<HashMap<usize, Marks>> = RefCell::new(HashMap::new());
}

/// Registers `marks` (a Uint8Array over an ArrayBuffer of its own, whose
/// memory V8 never moves) as the held-fd marks of the copy whose shared
/// buffers are `id`, replacing its previous array (JavaScript grows it,
/// copying the marks over; held fds that did not fit are marked in the new
/// one).
#[napi(js_name = "registerHeldFds")]
pub fn register_held_fds(env: Env, id: u32, marks: Unknown<'_>) -> Result<()> {
    let raw = env.raw();
    let mut array = KeptValues::new(raw);
    // SAFETY: a value of this call in its live env; the reference keeps the
    // array alive until it is replaced or the environment ends.
    let Some(region) = (unsafe { kept_region::<u8>(&mut array, marks.raw()) }) else {
        return Err(misuse(&env));
    };
    let id = id as usize;
    let replaced = MARKS.with_borrow_mut(|all| match all.get_mut(&id) {
        Some(marks) => {
            marks.held.regrow(region);
            Some(std::mem::replace(&mut marks.array, array))
        }
        None => {
            let held = HeldFds::new(region);
            all.insert(id, Marks { held, array });
            None
        }
    });
    match replaced {
        // SAFETY: made in this live env; the region over it was just replaced.
        Some(old) => unsafe { old.release() },
        // SAFETY: the hook's argument is the id, not a pointer: nothing to free.
        None => unsafe {
            sys::napi_add_env_cleanup_hook(raw, Some(release_held), id as *mut std::ffi::c_void);
        },
    }
    Ok(())
}

/// Hands `fds` over to JavaScript, marked as held for the user of the copy
/// whose shared buffers are `id` (when it has marks), leaving `fds` empty.
pub fn hand_over(id: Option<usize>, fds: &mut Vec<OwnedFd>) {
    if fds.is_empty() {
        return;
    }
    MARKS.with_borrow_mut(|all| {
        let marks = id.and_then(|id| all.get_mut(&id));
        HeldFds::hand_over(marks.map(|m| &mut m.held), fds);
    });
}

/// Closes `fds`, the fds nobody took, and clears their marks in the copy
/// whose shared buffers are `id`, in one call: JavaScript cannot be stopped
/// between the two (see [`HeldFds::close`]). Best effort, as for every fd
/// nobody took: an fd its owner closed already is no error here.
#[napi(js_name = "closeHeldFds")]
pub fn close_held_fds(id: i32, fds: Vec<i32>) {
    MARKS.with_borrow_mut(|all| {
        let _ = match usize::try_from(id).ok().and_then(|id| all.get_mut(&id)) {
            Some(marks) => marks.held.close(&fds),
            None => fdpass::close_fds(&fds),
        };
    });
}

unsafe extern "C" fn release_held(arg: *mut std::ffi::c_void) {
    let Some(Marks { held, array }) = MARKS.with_borrow_mut(|all| all.remove(&(arg as usize))) else {
        return;
    };
    // SAFETY: the marked fds are held by fdpass for this environment's user,
    // who can no longer take them (no JavaScript runs any more): nobody else
    // owns them. The array is released after, in its env, which is alive
    // while its cleanup hooks run.
    unsafe {
        held.close_all();
        array.release();
    }
}
