//! `NativeSocket`: a core [`Connection`] watched by Node's own event loop
//! (`napi_plumbing::watch`, which owns the poll handle, the callback and the
//! order of closing).
//!
//! The connection logic (write queue, batched reads, accepts) is the core's
//! (`fdpass::conn`); this module converts the constructor's arguments and
//! the methods' results, and names the socket by id for the lean
//! per-message calls ([`lean_calls`]); [`poll`] says what to watch and what
//! to do when the loop reports, [`deliver`] hands events to JavaScript.

mod deliver;
mod lean_calls;
mod poll;
pub(crate) mod stream_read;

use std::cell::RefCell;
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;

use fdpass::conn::{closed_error, Config, Connection};
use fdpass::id_table::IdTable;
use fdpass::SocketType;
use napi::bindgen_prelude::{Either, Result, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use napi_plumbing::watch::Watcher;

pub use lean_calls::LEAN_FUNCTIONS;

use crate::errors::{napi_failure, too_many_sockets, OrThrow};
use crate::values::borrow_fd;

/// What the watcher of a socket holds for it.
struct Socket {
    conn: Connection,
    /// The id of the shared buffers of this socket's copy of the JavaScript
    /// layer (see shared_buffers.rs); none for a listening socket.
    buffers: Option<usize>,
}

type Shared = Watcher<Socket>;

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
        let (raw_env, fd) = (env.raw(), conn.raw_fd());
        let socket = Socket {
            conn,
            buffers: usize::try_from(buffers).ok(),
        };
        // SAFETY: the live env and a value of this constructor call; the fd
        // is the connection's, open until it closes.
        let Some(shared) = (unsafe { Watcher::new(raw_env, fd, socket, callback.raw(), c"fdpass.FdSocket") })
        else {
            return Err(napi_failure(&env, "creating a socket's callback"));
        };
        let Some(id) = SOCKETS.with_borrow_mut(|t| t.insert(raw_env, &shared)) else {
            shared.close();
            return Err(too_many_sockets(&env));
        };
        Ok(NativeSocket { inner: shared, id })
    }

    /// The socket's fd, or -1 once closed.
    #[napi(getter)]
    pub fn fd(&self) -> i32 {
        self.inner.value().borrow().conn.raw_fd()
    }

    /// Bytes waiting in the send queue.
    #[napi(getter)]
    pub fn writable_length(&self) -> f64 {
        self.inner.value().borrow().conn.queued_bytes() as f64
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
            .value()
            .borrow_mut()
            .conn
            .set_reading(room as usize, fd_room as usize);
        poll::update(&self.inner).or_throw(&env)
    }

    /// Whether pending work on this socket keeps the process alive.
    #[napi]
    pub fn set_ref(&self, refed: bool) {
        self.inner.set_ref(refed);
    }

    /// The peer's credentials at connect time.
    #[napi]
    pub fn peer_credentials(&self, env: Env) -> Result<NativePeerCredentials> {
        let socket = self.inner.value().borrow();
        let fd = socket.conn.fd().ok_or_else(closed_error).or_throw(&env)?;
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
        self.inner.close();
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
        self.inner.close();
    }
}
