//! The few libuv calls an addon needs to have Node's own event loop watch an
//! fd (`uv_poll_t`). Node exports libuv's symbols to addons; they resolve
//! when the addon is loaded.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ffi::{c_int, c_void};

use napi::sys;

/// `UV_POLL` in `uv_handle_type`.
const UV_POLL: c_int = 8;
/// `UV_READABLE` in `uv_poll_event`.
pub const READABLE: c_int = 1;
/// `UV_WRITABLE` in `uv_poll_event`.
pub const WRITABLE: c_int = 2;

type PollCb = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
type CloseCb = unsafe extern "C" fn(handle: *mut c_void);

extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init(lp: *mut sys::uv_loop_s, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut c_void, events: c_int, cb: PollCb) -> c_int;
    fn uv_poll_stop(handle: *mut c_void) -> c_int;
    fn uv_close(handle: *mut c_void, cb: Option<CloseCb>);
    fn uv_ref(handle: *mut c_void);
    fn uv_unref(handle: *mut c_void);
}

fn layout() -> Layout {
    // SAFETY: uv_handle_size only reads a table of sizes.
    let size = unsafe { uv_handle_size(UV_POLL) };
    // uv handles hold pointers and ints: pointer alignment is what they need.
    Layout::from_size_align(size.max(1), std::mem::align_of::<*mut c_void>())
        .unwrap_or(Layout::new::<[usize; 32]>())
}

/// A `uv_poll_t` watching one fd, allocated at the size this libuv reports.
/// Its `data` field (the first field of every uv handle) points at the owner's
/// state; the owner frees that state from the close callback it passes to
/// [`Poll::close`].
pub struct Poll {
    handle: *mut c_void,
}

impl Poll {
    /// Initializes a poll handle for `fd` on `lp`, with `data` as its data pointer.
    ///
    /// # Safety
    /// `lp` must be the live loop of the current thread, and `fd` must stay
    /// open until the handle is closed. The fd's blocking mode is left as it
    /// was: the caller's reads and writes must not block by themselves
    /// (`MSG_DONTWAIT` on each call).
    pub unsafe fn new(lp: *mut sys::uv_loop_s, fd: c_int, data: *mut c_void) -> Result<Poll, c_int> {
        // SAFETY: the layout has a non-zero size (see `layout`).
        let handle = unsafe { alloc_zeroed(layout()) }.cast::<c_void>();
        if handle.is_null() {
            return Err(-libc::ENOMEM);
        }
        // uv_poll_init makes the fd non-blocking (O_NONBLOCK, a flag of the
        // open file description that every holder of the socket shares).
        // The caller never needs it (see above) and libuv only registers the fd with epoll/kqueue, never reads it: put
        // the flag back as it was at once. A blocking call another holder
        // *starts* in the few microseconds between could see EAGAIN; once
        // per socket, the first time it is watched.
        // SAFETY: fcntl reads no memory of ours; `handle` is a zeroed block
        // of uv_handle_size(UV_POLL) bytes, as uv_poll_init requires, on the
        // caller's live loop; on failure it is freed with the layout it was
        // allocated with and never used again; on success its first field
        // (`data`, in every uv handle) is a pointer-aligned pointer slot.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            let r = uv_poll_init(lp, handle, fd);
            if flags >= 0 && flags & libc::O_NONBLOCK == 0 {
                libc::fcntl(fd, libc::F_SETFL, flags);
            }
            if r != 0 {
                dealloc(handle.cast(), layout());
                return Err(r);
            }
            *(handle as *mut *mut c_void) = data;
        }
        Ok(Poll { handle })
    }

    /// The data pointer of a handle passed to a callback.
    ///
    /// # Safety
    /// `handle` must be a handle made by [`Poll::new`].
    pub unsafe fn data_of(handle: *mut c_void) -> *mut c_void {
        // SAFETY: a handle made by Poll::new starts with its data pointer.
        unsafe { *(handle as *mut *mut c_void) }
    }

    /// Watches for `events` (a mix of [`READABLE`] and [`WRITABLE`]); 0 stops.
    pub fn set(&self, events: c_int, cb: PollCb) -> c_int {
        // SAFETY: the handle is initialized and not yet closed.
        unsafe {
            if events == 0 {
                uv_poll_stop(self.handle)
            } else {
                uv_poll_start(self.handle, events, cb)
            }
        }
    }

    /// Whether an active handle keeps the loop alive.
    pub fn set_ref(&self, refed: bool) {
        // SAFETY: the handle is initialized and not yet closed.
        unsafe {
            if refed {
                uv_ref(self.handle)
            } else {
                uv_unref(self.handle)
            }
        }
    }

    /// Stops and closes the handle. `cb` runs on a later loop iteration, when
    /// libuv no longer uses the fd; it must call [`Poll::free`].
    pub fn close(self, cb: CloseCb) {
        // SAFETY: the handle is initialized; uv_close takes it over until `cb`.
        unsafe {
            uv_poll_stop(self.handle);
            uv_close(self.handle, Some(cb));
        }
    }

    /// Frees a handle's memory from its close callback.
    ///
    /// # Safety
    /// `handle` must come from [`Poll::new`] and its close callback be running.
    pub unsafe fn free(handle: *mut c_void) {
        // SAFETY: allocated by Poll::new with this layout; libuv is done with
        // it once its close callback runs (the caller's promise).
        unsafe { dealloc(handle.cast(), layout()) }
    }
}
