//! An fd that Node's own event loop watches for a native object, and the
//! JavaScript function that object calls back: [`Watcher`].
//!
//! Ownership: a watcher lives in an `Rc` shared by its JavaScript object, the
//! uv handle (until its close callback) and the environment's cleanup hook
//! (until the watcher is closed), so whichever lets go last frees it and no
//! callback ever sees freed memory. [`Watcher::close`] stops the poll handle
//! and closes the fd before it returns, as Node's `net.Socket#destroy()` does;
//! only the handle's memory waits for libuv.

use std::cell::RefCell;
use std::ffi::{c_int, c_void, CStr};
use std::os::fd::{OwnedFd, RawFd};
use std::ptr;
use std::rc::Rc;

use napi::sys;

use crate::loop_callback::{call, in_callback_scope, in_handle_scope, LoopCallback};
use crate::uv::Poll;

/// The owner's side of a [`Watcher`]: what it does when the fd is ready,
/// and how it closes.
pub trait Watched: Sized + 'static {
    /// The loop found the fd ready for `events` (uv events), or failed:
    /// `status` is then a negative errno and `events` what was watched.
    fn on_ready(watcher: &Rc<Watcher<Self>>, status: c_int, events: c_int);

    /// Closes the value, once (from [`Watcher::close`], a finalizer or the
    /// environment's end): returns its fd, which the watcher closes as soon
    /// as the loop no longer watches it. It runs with the watcher borrowed:
    /// it must not call the watcher.
    fn close(&mut self) -> Option<OwnedFd>;
}

/// A libuv or napi call that failed: its errno (positive) and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopError {
    pub errno: c_int,
    pub call: &'static str,
}

type CleanupHook = unsafe extern "C" fn(*mut c_void);

struct LoopState {
    /// Made the first time something is watched.
    poll: Option<Poll>,
    /// The uv events the handle watches for.
    events: c_int,
    refed: bool,
    /// The JavaScript function, until the watcher closes.
    callback: Option<LoopCallback>,
    /// The argument of the registered cleanup hook, if one is registered.
    cleanup_arg: *const c_void,
    /// The hook as registered, to remove it with the same pair (a generic
    /// function's address is not promised to be the same everywhere).
    cleanup_hook: CleanupHook,
    closed: bool,
}

/// A value of its owner's that holds an fd, watched by the event loop of
/// its JavaScript environment on its behalf, with the function it calls back.
pub struct Watcher<T> {
    env: sys::napi_env,
    fd: RawFd,
    state: RefCell<LoopState>,
    value: RefCell<T>,
}

impl<T: Watched> Watcher<T> {
    /// Watches nothing yet: `value`, whose fd is `fd`, and `callback`, held
    /// weakly while nothing is watched (so that an idle object its owner no
    /// longer reaches can be collected), with an async context named `name`.
    /// The watcher closes when its environment ends, if not before (unless
    /// the runtime refused to register the cleanup hook that does it, which
    /// it does only when out of memory). None if the runtime refuses the
    /// callback (`value` is then dropped).
    ///
    /// # Safety
    /// `env` must be the live env of the running call, `callback` a function
    /// of it, and `fd` stay open until `T::close` returns it.
    pub unsafe fn new(
        env: sys::napi_env,
        fd: RawFd,
        value: T,
        callback: sys::napi_value,
        name: &CStr,
    ) -> Option<Rc<Self>> {
        // SAFETY: the caller's promise.
        let callback = unsafe { LoopCallback::new(env, callback, name, false) }?;
        let watcher = Rc::new(Watcher {
            env,
            fd,
            state: RefCell::new(LoopState {
                poll: None,
                events: 0,
                refed: true,
                callback: Some(callback),
                cleanup_arg: ptr::null(),
                cleanup_hook: cleanup_hook::<T>,
                closed: false,
            }),
            value: RefCell::new(value),
        });
        // Close it if the environment goes away first (a worker thread
        // terminated with it open).
        let arg = Rc::into_raw(watcher.clone()).cast::<c_void>();
        let hook = watcher.state.borrow().cleanup_hook;
        // SAFETY: the hook's argument holds one count of the Rc until the hook
        // runs or is removed.
        let status = unsafe { sys::napi_add_env_cleanup_hook(env, Some(hook), arg.cast_mut()) };
        if status == sys::Status::napi_ok {
            watcher.state.borrow_mut().cleanup_arg = arg;
        } else {
            // SAFETY: takes back the count of the hook that was not registered.
            drop(unsafe { Rc::from_raw(arg.cast::<Self>()) });
        }
        Some(watcher)
    }

    /// The environment it belongs to.
    pub fn env(&self) -> sys::napi_env {
        self.env
    }

    /// The owner's value.
    pub fn value(&self) -> &RefCell<T> {
        &self.value
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }

    /// The uv events watched for now.
    pub fn watched(&self) -> c_int {
        self.state.borrow().events
    }

    /// Watches for `events` (0: nothing), and holds the callback strongly
    /// exactly while something is watched. Nothing once closed.
    pub fn watch(self: &Rc<Self>, events: c_int) -> Result<(), LoopError> {
        let mut state = self.state.borrow_mut();
        if state.closed {
            return Ok(());
        }
        if events != 0 && state.poll.is_none() {
            state.poll = Some(self.new_poll(state.refed)?);
        }
        if events != state.events {
            if let Some(poll) = &state.poll {
                let r = poll.set(events, on_poll::<T>);
                if r != 0 {
                    return Err(LoopError {
                        errno: -r,
                        call: "uv_poll_start",
                    });
                }
            }
            state.events = events;
        }
        if let Some(callback) = &mut state.callback {
            // SAFETY: open, so its env is alive (a closing env closes it first).
            unsafe { callback.set_strong(self.env, events != 0) };
        }
        Ok(())
    }

    /// A poll handle for the fd, holding one count of the watcher until its
    /// close callback.
    fn new_poll(self: &Rc<Self>, refed: bool) -> Result<Poll, LoopError> {
        let mut lp = ptr::null_mut();
        // SAFETY: the env is live on this thread; lp is an out-pointer to a local.
        let status = unsafe { sys::napi_get_uv_event_loop(self.env, &mut lp) };
        if status != sys::Status::napi_ok {
            return Err(LoopError {
                errno: libc::EINVAL,
                call: "napi_get_uv_event_loop",
            });
        }
        let data = Rc::into_raw(self.clone()).cast_mut().cast::<c_void>();
        // SAFETY: the loop is this thread's; the fd stays open until close(),
        // which closes the handle first; `data` holds one count of the Rc.
        match unsafe { Poll::new(lp, self.fd, data) } {
            Ok(poll) => {
                poll.set_ref(refed);
                Ok(poll)
            }
            Err(code) => {
                // SAFETY: takes back the count that no handle holds.
                drop(unsafe { Rc::from_raw(data.cast::<Self>()) });
                Err(LoopError {
                    errno: -code,
                    call: "uv_poll_init",
                })
            }
        }
    }

    /// Whether what it watches keeps the event loop alive.
    pub fn set_ref(&self, refed: bool) {
        let mut state = self.state.borrow_mut();
        state.refed = refed;
        if let Some(poll) = &state.poll {
            poll.set_ref(refed);
        }
    }

    /// The async context of the callback, until the watcher closes.
    pub fn context(&self) -> Option<sys::napi_async_context> {
        self.state.borrow().callback.as_ref().map(LoopCallback::context)
    }

    /// The callback, until the watcher closes (or the function is collected).
    ///
    /// # Safety
    /// The env must be alive, with a handle scope open.
    pub unsafe fn function(&self) -> Option<sys::napi_value> {
        let state = self.state.borrow();
        // SAFETY: the caller's promise.
        state
            .callback
            .as_ref()
            .and_then(|c| unsafe { c.function(self.env) })
    }

    /// Calls the callback with the arguments `args` makes of each item, in a
    /// handle scope, until the watcher closes or the callback throws (the
    /// items left are dropped). From the event loop (`from_loop`) the calls
    /// run in one callback scope, so that microtasks and `nextTick` run once
    /// JavaScript has them all, as after any Node I/O callback, and an
    /// exception is reported as uncaught; otherwise it stays pending, for the
    /// running call to throw.
    ///
    /// Nothing is called once the watcher is closed: only an open watcher's
    /// env is known to be alive (a closing env closes its watchers first).
    pub fn call_each<I, const N: usize>(
        &self,
        items: impl IntoIterator<Item = I>,
        from_loop: bool,
        mut args: impl FnMut(sys::napi_env, I) -> Option<[sys::napi_value; N]>,
    ) {
        if self.is_closed() {
            return;
        }
        let env = self.env;
        let each = || {
            for item in items {
                // Closed from JavaScript meanwhile: what is left is dropped.
                // SAFETY: the env is alive with a handle scope open (below).
                let Some(func) = (unsafe { self.function() }) else {
                    break;
                };
                let Some(args) = args(env, item) else {
                    continue;
                };
                // SAFETY: as above; `func` and `args` were made in this scope.
                if !unsafe { call(env, func, &args, from_loop) } {
                    break;
                }
            }
        };
        // SAFETY: the watcher is open, so its env is alive, and on this
        // thread (a napi env is used only on its own); the scopes opened here
        // are closed here.
        unsafe {
            in_handle_scope(env, || {
                if !from_loop {
                    return each();
                }
                // Closed already: nobody takes the items.
                if let Some(context) = self.context() {
                    in_callback_scope(env, context, each);
                }
            })
        }
    }

    /// Closes it: from JavaScript, a finalizer or the env's cleanup hook, all
    /// with the env alive. Stops watching, then closes the fd before
    /// returning: libuv allows closing an fd as soon as its poll handle is
    /// stopped (uv_poll_stop, which uv_close calls, removes it from
    /// epoll/kqueue at once and drops any event still pending for it in the
    /// current loop iteration).
    pub fn close(&self) {
        self.close_from(false);
    }

    /// See [`close`](Self::close); `teardown` when the environment ends.
    fn close_from(&self, teardown: bool) {
        // Both are let go outside the borrow of the state: an event loop may
        // run the close callback inside uv_close itself (Deno's does).
        let (poll, fd) = self.close_state(teardown);
        if let Some(poll) = poll {
            poll.close(on_close::<T>);
        }
        drop(fd);
    }

    /// Marks it closed and lets go of everything but the poll handle and the
    /// fd, which it returns for `close` to let go of in that order.
    fn close_state(&self, teardown: bool) -> (Option<Poll>, Option<OwnedFd>) {
        let mut state = self.state.borrow_mut();
        if std::mem::replace(&mut state.closed, true) {
            return (None, None);
        }
        let fd = self.value.borrow_mut().close();
        if !state.cleanup_arg.is_null() {
            let arg = std::mem::replace(&mut state.cleanup_arg, ptr::null());
            // SAFETY: removes the hook registered with this exact pair, then
            // takes back the count it held (the watcher stays alive: `self`
            // is borrowed from another count).
            unsafe {
                sys::napi_remove_env_cleanup_hook(self.env, Some(state.cleanup_hook), arg.cast_mut());
                drop(Rc::from_raw(arg.cast::<Self>()));
            }
        }
        if let Some(callback) = state.callback.take() {
            // SAFETY: the callback belongs to this env, which is alive (see `close`).
            unsafe { callback.release(self.env, teardown) };
        }
        (state.poll.take(), fd)
    }
}

unsafe extern "C" fn on_poll<T: Watched>(handle: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: the handle's data holds a count of the Rc until its close
    // callback, which cannot have run while the loop calls this one; the
    // count added here keeps the watcher alive for the whole callback,
    // whatever JavaScript does.
    let watcher = unsafe {
        let data = Poll::data_of(handle).cast::<Watcher<T>>().cast_const();
        Rc::increment_strong_count(data);
        Rc::from_raw(data)
    };
    let events = if status < 0 { watcher.watched() } else { events };
    T::on_ready(&watcher, status, events);
}

unsafe extern "C" fn on_close<T: Watched>(handle: *mut c_void) {
    // SAFETY: this is the close callback of a handle made by Poll::new, whose
    // data holds one count of the Rc; the handle is not used after this.
    unsafe {
        let data = Poll::data_of(handle).cast::<Watcher<T>>().cast_const();
        Poll::free(handle);
        // The fd was closed by close(); this releases the handle's count.
        drop(Rc::from_raw(data));
    }
}

unsafe extern "C" fn cleanup_hook<T: Watched>(arg: *mut c_void) {
    // SAFETY: the hook holds one count of the Rc, released here (Node runs
    // the hook once and then forgets it).
    let watcher = unsafe { Rc::from_raw(arg.cast_const().cast::<Watcher<T>>()) };
    watcher.state.borrow_mut().cleanup_arg = ptr::null();
    watcher.close_from(true);
}
