//! The fds a thread's JavaScript holds on its user's behalf: every fd of a
//! received batch, from the moment this side hands the batch over until
//! JavaScript hands the message to the user's code (or closes its fds).
//! Each copy of the TypeScript layer has one byte per fd number (1: held) in
//! a Uint8Array over an ArrayBuffer of its own (`src/held-fds.ts`), under the
//! id of its shared buffers (see shared_buffers.rs): marked here when a batch
//! is handed over, cleared by JavaScript. When the environment ends without
//! JavaScript running again — a worker thread terminated at any point, even
//! in the middle of a batch — its cleanup hook closes every fd still marked.
//! (Sockets, queued sends and fds inside the frame decoder are native and
//! close with their socket.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};

use napi::bindgen_prelude::{Result, Unknown};
use napi::{sys, Env, JsValue};

use crate::values::{keep, typed_array};
use napi_derive::napi;

struct Marks {
    env: sys::napi_env,
    ptr: *mut u8,
    len: usize,
    reference: sys::napi_ref,
    /// Held fds past the end of the array, until JavaScript grows it.
    beyond: Vec<i32>,
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
    // SAFETY: the live env and a value of this call; the reference keeps the
    // array, and so its memory, alive until it is replaced or the
    // environment ends.
    let kept = unsafe {
        typed_array(raw, marks.raw(), sys::TypedarrayType::uint8_array)
            .and_then(|(data, len)| Some((data, len, keep(raw, marks.raw())?)))
    };
    let Some((data, len, reference)) = kept else {
        return Err(crate::errors::misuse(&env));
    };
    let id = id as usize;
    let mut new = Marks {
        env: raw,
        ptr: data.cast(),
        len,
        reference,
        beyond: Vec::new(),
    };
    let old = MARKS.with_borrow_mut(|all| all.remove(&id));
    let first = old.is_none();
    if let Some(old) = old {
        for fd in old.beyond {
            new.mark(fd);
        }
        // SAFETY: made in this env by the earlier registration, kept nowhere else.
        unsafe { sys::napi_delete_reference(old.env, old.reference) };
    }
    MARKS.with_borrow_mut(|all| all.insert(id, new));
    if first {
        // SAFETY: the hook's argument is the id, not a pointer: nothing to free.
        unsafe { sys::napi_add_env_cleanup_hook(raw, Some(release_held), id as *mut std::ffi::c_void) };
    }
    Ok(())
}

impl Marks {
    fn mark(&mut self, fd: i32) {
        match usize::try_from(fd) {
            // SAFETY: in bounds of the live array; JavaScript runs on this
            // same thread, so nothing writes it meanwhile.
            Ok(i) if i < self.len => unsafe { self.ptr.add(i).write(1) },
            _ => self.beyond.push(fd),
        }
    }
}

/// Marks `fds` as held for the user of the copy whose shared buffers are
/// `id`, as a batch is handed over to JavaScript.
pub fn mark(id: Option<usize>, fds: &[OwnedFd]) {
    let Some(id) = id else { return };
    if fds.is_empty() {
        return;
    }
    MARKS.with_borrow_mut(|all| {
        if let Some(marks) = all.get_mut(&id) {
            fds.iter().for_each(|fd| marks.mark(fd.as_raw_fd()));
        }
    });
}

unsafe extern "C" fn release_held(arg: *mut std::ffi::c_void) {
    let id = arg as usize;
    let Some(marks) = MARKS.with_borrow_mut(|all| all.remove(&id)) else {
        return;
    };
    // SAFETY: the array is alive (its reference is deleted below) and `len`
    // long; no JavaScript runs any more in this environment.
    let held = unsafe { std::slice::from_raw_parts(marks.ptr, marks.len) };
    let marked = held
        .iter()
        .enumerate()
        .filter(|(_, &m)| m != 0)
        .map(|(fd, _)| fd as i32);
    for fd in marked.chain(marks.beyond.iter().copied()) {
        // SAFETY: the fd is marked as held by fdpass for this environment's
        // user, who can no longer take it: nobody else owns it.
        unsafe { libc::close(fd) };
    }
    // SAFETY: made in this env, which is alive while its cleanup hooks run.
    unsafe { sys::napi_delete_reference(marks.env, marks.reference) };
}
