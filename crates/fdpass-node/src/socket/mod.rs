//! `NativeSocket`: a core [`Connection`] watched by Node's own event loop.
//!
//! The connection logic (write queue, batched reads, accepts) is the core's
//! (`fdpass::conn`); this module owns the JavaScript side of it: the
//! callback and its async context, the libuv poll handle ([`poll`]), the
//! delivery of events ([`deliver`]) and the lean per-message calls
//! ([`lean_calls`]).
//!
//! Ownership: the state lives in an `Rc` shared by the JavaScript object, the
//! uv handle (until its close callback) and the environment cleanup hook (until
//! the socket is closed), so whichever lets go last frees it and no callback
//! ever sees freed memory. close() stops the poll handle and closes the fd
//! before it returns; only the handle's memory waits for libuv.

mod deliver;
mod lean_calls;
mod poll;
pub(crate) mod stream_read;

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;
use std::rc::Rc;

use fdpass::conn::{closed_error, Config, Connection};
use fdpass::id_table::IdTable;
use fdpass::SocketType;
use napi::bindgen_prelude::{Either, Result, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;

pub use lean_calls::LEAN_FUNCTIONS;

use crate::errors::{napi_failure, throw, too_many_sockets, OrThrow};
use crate::values::borrow_fd;
use napi_plumbing::loop_callback::LoopCallback;
use napi_plumbing::uv::Poll;

struct State {
    conn: Connection,
    poll: Option<Poll>,
    /// The uv events the poll handle watches for.
    events: c_int,
    refed: bool,
    /// The JavaScript callback, until the socket closes.
    callback: Option<LoopCallback>,
    cleanup_arg: *const Shared,
}

struct Shared {
    env: sys::napi_env,
    /// The id of the shared buffers of this socket's copy of the JavaScript
    /// layer (see shared_buffers.rs); none for a listening socket.
    buffers: Option<usize>,
    state: RefCell<State>,
}

thread_local! {
    /// The sockets of this thread by id, for the lean calls to name them.
    static SOCKETS: RefCell<IdTable<sys::napi_env, Shared>> = const { RefCell::new(IdTable::new()) };
}

/// The socket `id` names in `env`, if it is alive.
fn lookup(env: sys::napi_env, id: i32) -> Option<Rc<Shared>> {
    SOCKETS.with_borrow(|t| t.get(env, id))
}

/// The peer's credentials (`PeerCredentials` in the TypeScript layer).
#[napi(object)]
pub struct NativePeerCredentials {
    /// The peer's pid, or undefined when the kernel cannot tell.
    pub pid: Either<i32, ()>,
    pub uid: u32,
    pub gid: u32,
}

/// A non-blocking socket watched by the event loop (internal; wrapped by the
/// TypeScript `FdSocket` and `FdServer`).
#[napi]
pub struct NativeSocket {
    inner: Rc<Shared>,
    /// Its id in this thread's socket table, for the lean calls.
    id: i32,
}

#[napi]
impl NativeSocket {
    /// Adopts `fd` (ownership passes here, also on failure).
    #[napi(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        env: Env,
        fd: i32,
        kind: String,
        listening: bool,
        framing: bool,
        max_bytes: u32,
        max_fds: u32,
        callback: Unknown<'_>,
        buffers: i32,
    ) -> Result<Self> {
        let _ = borrow_fd(&env, fd)?;
        // SAFETY: fd is non-negative (checked above) and JavaScript hands it
        // over to this object (see the TSDoc of FdSocket.from): nobody else
        // closes it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let kind = SocketType::from_name(&kind).or_throw(&env)?;
        let config = Config {
            kind,
            listening,
            framing,
            max_bytes: max_bytes as usize,
            max_fds: max_fds as usize,
        };
        let conn = Connection::new(owned, config).or_throw(&env)?;
        let raw_env = env.raw();
        // SAFETY: the live env and a value of this constructor call. Weak
        // until something is pending (see poll::update).
        let Some(callback) =
            (unsafe { LoopCallback::new(raw_env, callback.raw(), c"fdpass.FdSocket", false) })
        else {
            return Err(napi_failure(&env, "creating a socket's callback"));
        };
        let shared = Rc::new(Shared {
            env: raw_env,
            buffers: usize::try_from(buffers).ok(),
            state: RefCell::new(State {
                conn,
                poll: None,
                events: 0,
                refed: true,
                callback: Some(callback),
                cleanup_arg: ptr::null(),
            }),
        });
        // Close the socket if the environment goes away first (a worker thread
        // terminated with sockets open).
        let arg = Rc::into_raw(shared.clone());
        // SAFETY: registers a hook with a pointer that stays valid until the
        // hook runs or is removed (it holds one count of the Rc).
        let status =
            unsafe { sys::napi_add_env_cleanup_hook(raw_env, Some(cleanup_hook), arg as *mut c_void) };
        if status == sys::Status::napi_ok {
            shared.state.borrow_mut().cleanup_arg = arg;
        } else {
            // SAFETY: takes back the count given to the hook that was not registered.
            drop(unsafe { Rc::from_raw(arg) });
        }
        let Some(id) = SOCKETS.with_borrow_mut(|t| t.insert(raw_env, &shared)) else {
            close(&shared);
            return Err(too_many_sockets(&env));
        };
        Ok(NativeSocket { inner: shared, id })
    }

    /// The socket's fd, or -1 once closed.
    #[napi(getter)]
    pub fn fd(&self) -> i32 {
        self.inner.state.borrow().conn.raw_fd()
    }

    /// Bytes waiting in the send queue.
    #[napi(getter)]
    pub fn writable_length(&self) -> f64 {
        self.inner.state.borrow().conn.queued_bytes() as f64
    }

    /// The id the lean calls take (see [`LEAN_FUNCTIONS`]).
    #[napi(getter)]
    pub fn id(&self) -> i32 {
        self.id
    }

    /// How many more messages (and fds) JavaScript wants read as they arrive
    /// (0 messages: stop reading).
    #[napi]
    pub fn set_reading(&self, env: Env, room: u32, fd_room: u32) -> Result<()> {
        self.inner
            .state
            .borrow_mut()
            .conn
            .set_reading(room as usize, fd_room as usize);
        poll::update(&self.inner).or_throw(&env)
    }

    /// Whether pending work on this socket keeps the process alive.
    #[napi]
    pub fn set_ref(&self, refed: bool) {
        let mut state = self.inner.state.borrow_mut();
        state.refed = refed;
        if let Some(poll) = &state.poll {
            poll.set_ref(refed);
        }
    }

    /// The peer's credentials at connect time.
    #[napi]
    pub fn peer_credentials(&self, env: Env) -> Result<NativePeerCredentials> {
        let state = self.inner.state.borrow();
        let fd = state.conn.fd().ok_or_else(|| throw(&env, &closed_error()))?;
        let creds = fdpass::unix::peer_credentials(fd).or_throw(&env)?;
        Ok(NativePeerCredentials {
            pid: creds.pid.map_or(Either::B(()), Either::A),
            uid: creds.uid,
            gid: creds.gid,
        })
    }

    /// Closes the socket: drops queued sends (closing their duplicated fds)
    /// and received fds nobody took, and closes the fd before returning.
    #[napi]
    pub fn close(&self) {
        close(&self.inner);
    }
}

impl Drop for NativeSocket {
    fn drop(&mut self) {
        // Garbage-collected without close(): release the fd and the handle.
        // No JavaScript may run here, and none does. While the thread shuts
        // down (a worker's last finalizers) the table may be gone already:
        // nothing to forget then.
        let _ = SOCKETS.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                t.remove(self.id);
            }
        });
        close(&self.inner);
    }
}

unsafe extern "C" fn cleanup_hook(arg: *mut c_void) {
    // SAFETY: the hook holds one count of the Rc, released here (the hook
    // runs once and is then removed by Node).
    let shared = unsafe { Rc::from_raw(arg as *const Shared) };
    shared.state.borrow_mut().cleanup_arg = ptr::null();
    close(&shared);
}

/// Closes the socket: from JavaScript, a finalizer or the env's cleanup hook,
/// all with the env alive.
fn close(shared: &Rc<Shared>) {
    // Both are let go outside the borrow of the state: an event loop may run
    // the close callback inside uv_close itself (Deno's does).
    let (poll, fd) = close_state(shared);
    // Stop watching, then close the fd before returning, as Node's
    // net.Socket#destroy() does: libuv allows closing an fd as soon as its
    // poll handle is stopped (uv_poll_stop, which uv_close calls, removes it
    // from epoll/kqueue at once and drops any event still pending for it in
    // the current loop iteration). Only the handle's memory waits for its
    // close callback.
    if let Some(poll) = poll {
        poll.close(poll::on_close);
    }
    drop(fd);
}

/// Marks the socket closed and lets go of everything but the poll handle and
/// the fd, which it returns for `close` to let go of in that order.
fn close_state(shared: &Rc<Shared>) -> (Option<Poll>, Option<OwnedFd>) {
    let mut state = shared.state.borrow_mut();
    if state.conn.is_closed() {
        return (None, None);
    }
    let fd = state.conn.close();
    let env = shared.env;
    if !state.cleanup_arg.is_null() {
        let arg = std::mem::replace(&mut state.cleanup_arg, ptr::null());
        // SAFETY: removes the hook registered with this exact pair, then takes
        // back the count it held.
        unsafe {
            sys::napi_remove_env_cleanup_hook(env, Some(cleanup_hook), arg as *mut c_void);
            drop(Rc::from_raw(arg));
        }
    }
    if let Some(callback) = state.callback.take() {
        // SAFETY: the callback belongs to this env, which is alive: from
        // JavaScript, from a finalizer or from the env's cleanup hook.
        unsafe { callback.release(env, true) };
    }
    (state.poll.take(), fd)
}
