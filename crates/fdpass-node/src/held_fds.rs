//! The fds a thread's JavaScript holds on its user's behalf: messages read
//! ahead that nobody has taken yet. Each copy of the TypeScript layer keeps
//! one byte per fd number (1: held) in a Uint8Array over an ArrayBuffer of
//! its own (`src/held-fds.ts`), shared here. When the environment ends
//! without JavaScript running again — a worker thread terminated — its
//! cleanup hook closes every fd still marked, so that termination at any
//! point releases what fdpass held. (Sockets, queued sends and fds inside
//! the frame decoder are native and close with their socket.)

use std::cell::RefCell;
use std::ptr;

use napi::bindgen_prelude::{Result, Unknown};
use napi::{sys, Env, JsValue, Status};
use napi_derive::napi;

struct Marks {
    env: sys::napi_env,
    ptr: *mut u8,
    len: usize,
    reference: sys::napi_ref,
}

thread_local! {
    /// The marks of each copy on this thread, by id; ids are not reused.
    static MARKS: RefCell<Vec<Option<Marks>>> = const { RefCell::new(Vec::new()) };
}

/// Registers `marks` (a Uint8Array over an ArrayBuffer of its own, whose
/// memory V8 never moves) as the held-fd marks of copy `id`, replacing the
/// copy's previous array (it grows); -1 registers a new copy. Returns the id.
#[napi(js_name = "registerHeldFds")]
pub fn register_held_fds(env: Env, id: i32, marks: Unknown<'_>) -> Result<u32> {
    let raw = env.raw();
    let mut len = 0;
    let mut data = ptr::null_mut();
    let mut reference = ptr::null_mut();
    // SAFETY: raw napi calls on the live env of this call; the reference
    // keeps the array, and so its memory, alive until it is replaced or the
    // environment ends.
    unsafe {
        let mut kind = 0;
        let mut arraybuffer = ptr::null_mut();
        let mut offset = 0;
        if sys::napi_get_typedarray_info(
            raw,
            marks.raw(),
            &mut kind,
            &mut len,
            &mut data,
            &mut arraybuffer,
            &mut offset,
        ) != sys::Status::napi_ok
            || kind != sys::TypedarrayType::uint8_array
            || sys::napi_create_reference(raw, marks.raw(), 1, &mut reference) != sys::Status::napi_ok
        {
            return Err(napi::Error::new(Status::InvalidArg, "expected a Uint8Array"));
        }
    }
    let new = Marks {
        env: raw,
        ptr: data.cast(),
        len,
        reference,
    };
    let existing = usize::try_from(id).ok();
    let (id, old) = MARKS.with_borrow_mut(|all| match existing.filter(|&i| i < all.len()) {
        Some(i) => (i, all[i].replace(new)),
        None => {
            all.push(Some(new));
            (all.len() - 1, None)
        }
    });
    match old {
        // SAFETY: made in this env by an earlier registration, kept nowhere else.
        Some(old) => unsafe {
            sys::napi_delete_reference(old.env, old.reference);
        },
        None => {
            // SAFETY: the hook's argument is the id, not a pointer: nothing to free.
            unsafe {
                sys::napi_add_env_cleanup_hook(raw, Some(release_held), id as *mut std::ffi::c_void);
            }
        }
    }
    Ok(id as u32)
}

unsafe extern "C" fn release_held(arg: *mut std::ffi::c_void) {
    let id = arg as usize;
    let Some(marks) = MARKS.with_borrow_mut(|all| all.get_mut(id).and_then(Option::take)) else {
        return;
    };
    // SAFETY: the array is alive (its reference is deleted below) and `len`
    // long; no JavaScript runs any more in this environment.
    let held = unsafe { std::slice::from_raw_parts(marks.ptr, marks.len) };
    for (fd, &mark) in held.iter().enumerate() {
        if mark != 0 {
            // SAFETY: the fd is marked as held by fdpass for this
            // environment's user, who can no longer take it: nobody else owns it.
            unsafe { libc::close(fd as i32) };
        }
    }
    // SAFETY: made in this env, which is alive while its cleanup hooks run.
    unsafe { sys::napi_delete_reference(marks.env, marks.reference) };
}
