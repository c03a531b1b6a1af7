//! `NativeSocket`: a non-blocking socket watched by Node's own event loop.
//!
//! Every operation tries the syscall first and asks the loop (a `uv_poll_t`)
//! to wait only after EAGAIN. On readiness it drains what is queued, up to the
//! room JavaScript asked for, and hands the whole batch to JavaScript inside
//! one callback scope (`napi_open_callback_scope`), so promise reactions run
//! at once after it. The same object serves listening sockets, whose
//! "messages" are accepted connections.
//!
//! Ownership: the state lives in an `Rc` shared by the JavaScript object, the
//! uv handle (until its close callback) and the environment cleanup hook (until
//! the socket is closed), so whichever lets go last frees it and no callback
//! ever sees freed memory. close() stops the poll handle and closes the fd
//! before it returns; only the handle's memory waits for libuv.
//!
//! The socket's own mode is never changed (O_NONBLOCK is shared with every
//! process holding the socket): each send and receive is non-blocking per
//! call (`MSG_DONTWAIT`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::ptr;
use std::rc::Rc;

use fdpass::cmsg::ControlBuffer;
use fdpass::frame::{encode_header, FrameDecoder, HEADER_LEN};
use fdpass::{Error as CoreError, SocketType, Wait, MAX_FDS_PER_MESSAGE};
use napi::bindgen_prelude::{Result, Unknown};
use napi::{sys, Env, JsValue, Status};
use napi_derive::napi;
use nix::errno::Errno;

use crate::datagram_scratch::DatagramScratch;
use crate::errors::{build_error, throw};
use crate::lean::{arg_bytes, lean_args, throw_misuse, Lean, LeanFunction};
use crate::shared_buffers::{self, publish};
use crate::socket_table;
use crate::uv::{Poll, READABLE, WRITABLE};
use crate::values::{borrow_fd, RawValue};

/// Events delivered to the JavaScript callback `(kind, a, b)`.
const EV_MESSAGES: i32 = 1; // a: Buffer of payloads, b: Int32Array [count, (len, nfds, fd...)...]
const EV_END: i32 = 2; // the peer closed the stream
const EV_ERROR: i32 = 3; // a: Error; the socket is unusable
const EV_WRITTEN: i32 = 4; // a: number of queued sends that completed
const EV_WRITE_ERROR: i32 = 5; // a: Error, b: number of queued sends that failed
const EV_ACCEPTED: i32 = 6; // b: Int32Array [count, fd...]
const EV_PUBLISHED: i32 = 7; // a: count; the batch is in the shared buffers (see shared_buffers.rs)

/// How much one non-framed read or framed read step asks the kernel for.
const READ_CHUNK: usize = 64 * 1024;

/// A batch reads no more from the socket once its payloads reach this many
/// bytes, however many messages were asked for (`readAhead`, `receiveMany`'s
/// `max`): what one read takes in stays bounded, and usually fits the shared
/// buffers. Frames the decoder already holds are still handed over (they cost
/// no more memory, and no poll event would come for them).
const BATCH_BYTES: usize = 256 * 1024;

struct PendingWrite {
    bytes: Vec<u8>,
    offset: usize,
    /// Duplicates of the fds to attach, owned until the first byte goes out.
    fds: Vec<OwnedFd>,
}

/// A batch of messages read in one go: the payloads back to back, `meta` =
/// `[count, (length, fd count, fds...)...]`, and the fds, owned until
/// JavaScript has them.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    meta: Vec<i32>,
    fds: Vec<OwnedFd>,
}

impl Batch {
    /// Empties the batch, keeping its allocations.
    fn reset(&mut self) {
        self.data.clear();
        self.meta.clear();
        self.meta.push(0);
        self.fds.clear();
    }

    /// Appends one message and its fds.
    fn push(&mut self, payload: &[u8], fds: impl ExactSizeIterator<Item = OwnedFd>) {
        let first = self.fds.len();
        self.fds.reserve(fds.len());
        self.fds.extend(fds);
        self.push_received(payload, first);
    }

    /// Appends one message whose fds were received straight into `fds`,
    /// from index `first` on.
    fn push_received(&mut self, payload: &[u8], first: usize) {
        if self.meta.is_empty() {
            self.meta.push(0);
        }
        let fds = &self.fds[first..];
        self.data.extend_from_slice(payload);
        self.meta.push(payload.len() as i32);
        self.meta.push(fds.len() as i32);
        self.meta.extend(fds.iter().map(AsRawFd::as_raw_fd));
        self.meta[0] += 1;
    }

    /// The batch, to be reused by the next read, unless a large message
    /// grew it past twice [`BATCH_BYTES`]: that memory is let go.
    fn into_spare(self) -> Option<Batch> {
        (self.data.capacity() <= 2 * BATCH_BYTES).then_some(self)
    }

    /// How many messages it holds.
    fn count(&self) -> usize {
        self.meta.first().map_or(0, |&n| n as usize)
    }

    /// Whether it holds `max` messages, or at least `max_fds` fds.
    fn is_full(&self, (max, max_fds): (usize, usize)) -> bool {
        self.count() >= max || self.fds.len() >= max_fds
    }

    /// Whether it may read more from the socket: not full, and under
    /// [`BATCH_BYTES`] of payloads.
    fn may_read(&self, limits: (usize, usize)) -> bool {
        !self.is_full(limits) && self.data.len() < BATCH_BYTES
    }
}

enum Event {
    Messages(Batch),
    Accepted(Vec<OwnedFd>),
    End,
    Error(CoreError),
    Written(u32),
    WriteError(CoreError, u32),
}

struct State {
    fd: Option<OwnedFd>,
    kind: SocketType,
    listening: bool,
    framing: bool,
    max_bytes: usize,
    max_fds: usize,
    decoder: FrameDecoder<OwnedFd>,
    control: Box<ControlBuffer>,
    /// The fds of one framed read on their way into the decoder (kept, so
    /// that a read allocates nothing).
    received_fds: Vec<OwnedFd>,
    /// The vectors of the last batch, kept to be reused by the next one.
    spare_batch: Option<Batch>,
    writes: VecDeque<PendingWrite>,
    queued_bytes: usize,
    poll: Option<Poll>,
    events: c_int,
    /// How many more messages JavaScript wants; 0 stops reading.
    read_room: usize,
    /// How many more received fds JavaScript accepts before it takes some:
    /// a read stops once a batch holds this many.
    read_fd_room: usize,
    refed: bool,
    eof: bool,
    closed: bool,
    callback: sys::napi_ref,
    callback_strong: bool,
    async_context: sys::napi_async_context,
    cleanup_arg: *const Shared,
}

pub(crate) struct Shared {
    env: sys::napi_env,
    /// The id of the shared buffers of this socket's copy of the JavaScript
    /// layer (see shared_buffers.rs); none for a listening socket.
    buffers: Option<usize>,
    state: RefCell<State>,
}

/// The state of a socket, as the socket table (socket_table.rs) names it.
pub(crate) type SharedSocket = Shared;

/// A non-blocking socket watched by the event loop (internal; wrapped by the
/// TypeScript `FdSocket` and `FdServer`).
#[napi]
pub struct NativeSocket {
    shared: Rc<Shared>,
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
        // SAFETY: JavaScript hands the fd over to this object (see TSDoc of FdSocket.from).
        let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let kind = SocketType::from_name(&kind).map_err(|e| throw(&env, &e))?;
        // The socket's mode (O_NONBLOCK) is left alone: other processes may
        // hold it. Every send and receive is non-blocking per call instead
        // (Wait::Never); a listener is non-blocking already (see unix.rs).
        fdpass::socket::disable_sigpipe(owned.as_fd()).map_err(|e| throw(&env, &e))?;
        let raw_env = env.raw();
        let mut callback_ref = ptr::null_mut();
        let mut async_context = ptr::null_mut();
        // SAFETY: raw napi calls on the live env of this constructor call.
        unsafe {
            check(sys::napi_create_reference(
                raw_env,
                callback.raw(),
                0,
                &mut callback_ref,
            ))?;
            let mut name = ptr::null_mut();
            check(sys::napi_create_string_utf8(
                raw_env,
                c"fdpass.FdSocket".as_ptr(),
                -1,
                &mut name,
            ))?;
            let mut resource = ptr::null_mut();
            check(sys::napi_create_object(raw_env, &mut resource))?;
            check(sys::napi_async_init(raw_env, resource, name, &mut async_context))?;
        }
        let shared = Rc::new(Shared {
            env: raw_env,
            buffers: usize::try_from(buffers).ok(),
            state: RefCell::new(State {
                fd: Some(owned),
                kind,
                listening,
                framing: framing && kind == SocketType::Stream,
                max_bytes: max_bytes as usize,
                max_fds: (max_fds as usize).min(MAX_FDS_PER_MESSAGE),
                decoder: FrameDecoder::new(max_bytes as usize, (max_fds as usize).min(MAX_FDS_PER_MESSAGE)),
                control: Box::new(ControlBuffer::new()),
                received_fds: Vec::new(),
                spare_batch: None,
                writes: VecDeque::new(),
                queued_bytes: 0,
                poll: None,
                events: 0,
                read_room: 0,
                read_fd_room: 0,
                refed: true,
                eof: false,
                closed: false,
                callback: callback_ref,
                callback_strong: false,
                async_context,
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
        let Some(id) = socket_table::register(raw_env, &shared) else {
            close(&shared);
            return Err(napi::Error::new(
                Status::GenericFailure,
                "fdpass: too many sockets on this thread (about a million)",
            ));
        };
        Ok(NativeSocket { shared, id })
    }

    /// The socket's fd, or -1 once closed.
    #[napi(getter)]
    pub fn fd(&self) -> i32 {
        self.shared
            .state
            .borrow()
            .fd
            .as_ref()
            .map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Bytes waiting in the send queue.
    #[napi(getter)]
    pub fn writable_length(&self) -> f64 {
        self.shared.state.borrow().queued_bytes as f64
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
        {
            let mut state = self.shared.state.borrow_mut();
            state.read_room = room as usize;
            state.read_fd_room = fd_room as usize;
        }
        update_poll(&self.shared).map_err(|e| throw(&env, &e))
    }

    /// Whether pending work on this socket keeps the process alive.
    #[napi]
    pub fn set_ref(&self, refed: bool) {
        let mut state = self.shared.state.borrow_mut();
        state.refed = refed;
        if let Some(poll) = &state.poll {
            poll.set_ref(refed);
        }
    }

    /// The peer's credentials at connect time.
    #[napi(ts_return_type = "{ pid: number | undefined; uid: number; gid: number }")]
    pub fn peer_credentials(&self, env: Env) -> Result<RawValue> {
        let creds = {
            let state = self.shared.state.borrow();
            let fd = state.fd.as_ref().ok_or_else(|| throw(&env, &closed_error()))?;
            fdpass::unix::peer_credentials(fd.as_fd()).map_err(|e| throw(&env, &e))?
        };
        // SAFETY: raw napi calls on the live env of this call.
        unsafe {
            let raw = env.raw();
            let mut object = ptr::null_mut();
            check(sys::napi_create_object(raw, &mut object))?;
            let mut value = ptr::null_mut();
            match creds.pid {
                Some(pid) => check(sys::napi_create_int32(raw, pid, &mut value))?,
                None => check(sys::napi_get_undefined(raw, &mut value))?,
            }
            check(sys::napi_set_named_property(raw, object, c"pid".as_ptr(), value))?;
            check(sys::napi_create_uint32(raw, creds.uid, &mut value))?;
            check(sys::napi_set_named_property(raw, object, c"uid".as_ptr(), value))?;
            check(sys::napi_create_uint32(raw, creds.gid, &mut value))?;
            check(sys::napi_set_named_property(raw, object, c"gid".as_ptr(), value))?;
            Ok(RawValue(object))
        }
    }

    /// Closes the socket: drops queued sends (closing their duplicated fds)
    /// and received fds nobody took, and closes the fd before returning.
    #[napi]
    pub fn close(&self) {
        close(&self.shared);
    }
}

impl Drop for NativeSocket {
    fn drop(&mut self) {
        // Garbage-collected without close(): release the fd and the handle.
        // No JavaScript may run here, and none does.
        socket_table::unregister(self.id);
        close(&self.shared);
    }
}

/// The lean functions of `FdSocket` and `FdServer` (see lean.rs): the calls
/// made for every message.
pub const LEAN_FUNCTIONS: &[LeanFunction] = &[
    (c"socketSend", socket_send_lean),
    (c"socketSendScratch", socket_send_scratch_lean),
    (c"socketRead", socket_read_lean),
];

/// The socket named by integer argument `i` of a lean call in `env`, with a
/// count held for the call; None for an id that names no live socket of `env`.
fn arg_socket(env: sys::napi_env, lean: &Lean, i: usize) -> Option<Rc<Shared>> {
    socket_table::lookup(env, lean.int(i)?)
}

/// Sends with the fds of `lean`'s slots; the result is 1 when the kernel
/// took the whole message, 0 when it was queued.
unsafe fn send_and_report(
    env: sys::napi_env,
    lean: &Lean,
    shared: &Rc<Shared>,
    data: &[u8],
    fds: &[i32],
) -> sys::napi_value {
    match send(shared, data, fds) {
        Ok(sent_now) => lean.set_result(i32::from(sent_now)),
        Err(e) => {
            throw(&Env::from_raw(env), &e);
        }
    }
    ptr::null_mut()
}

/// `socketSend(data)`, integers [socket id, fdCount]: sends `data` (the
/// caller's Uint8Array) with the fds in scratch slots [0, fdCount).
unsafe extern "C" fn socket_send_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): env and info are those of this running callback,
    // in which no JavaScript runs.
    let Some((lean, [data])) = lean_args::<1>(env, info) else {
        return throw_misuse(env);
    };
    let (Some(shared), Some(data), Some(fds)) = (
        arg_socket(env, lean, 0),
        arg_bytes(env, data),
        lean.count(1).and_then(|c| lean.fd_slots(c)),
    ) else {
        return throw_misuse(env);
    };
    send_and_report(env, lean, &shared, data, fds)
}

/// `socketSendScratch()`, integers [socket id, dataLength, fdCount]: sends
/// scratch data bytes [0, dataLength) with the fds in scratch slots
/// [0, fdCount).
unsafe extern "C" fn socket_send_scratch_lean(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY (whole body): env and info are those of this running callback,
    // in which no JavaScript runs; the data area and the fd slots are disjoint.
    let Some((lean, [])) = lean_args::<0>(env, info) else {
        return throw_misuse(env);
    };
    let (Some(shared), Some(data), Some(fds)) = (
        arg_socket(env, lean, 0),
        lean.count(1).and_then(|len| lean.data(len)),
        lean.count(2).and_then(|c| lean.fd_slots(c)),
    ) else {
        return throw_misuse(env);
    };
    send_and_report(env, lean, &shared, data, fds)
}

/// `socketRead()`, integers [socket id, max, maxFds]: reads what is queued,
/// up to `max` messages (or connections) and about `maxFds` fds.
///
/// The common case returns without calling back: a batch of `n` messages
/// written into the shared buffers gives the result `n`. Nothing read gives
/// 0; anything delivered through the socket's callback (end of stream, an
/// error, accepted connections, a batch too large for the shared buffers)
/// gives -1. The result is set after the callback has run, so that lean
/// calls it makes cannot overwrite it.
unsafe extern "C" fn socket_read_lean(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): env and info are those of this running callback.
    let Some((lean, [])) = lean_args::<0>(env, info) else {
        return throw_misuse(env);
    };
    let (Some(shared), Some(max), Some(max_fds)) = (arg_socket(env, lean, 0), lean.count(1), lean.count(2))
    else {
        return throw_misuse(env);
    };
    let result_slot = lean.result_slot();
    // The callback may run JavaScript that makes lean calls: `lean` is not
    // used past here; `shared` holds its own count.
    let result = read_now(&shared, max, max_fds);
    // SAFETY: the slot is in the scratch's memory, alive with the env.
    result_slot.write(result);
    ptr::null_mut()
}

/// See [`socket_read_lean`].
fn read_now(shared: &Rc<Shared>, max: usize, max_fds: usize) -> i32 {
    if shared.state.borrow().listening {
        let events = read_events(shared, max, max_fds);
        let delivered = !events.is_empty();
        deliver(shared, events, false);
        return if delivered { -1 } else { 0 };
    }
    let (batch, tail) = read_batch(shared, max, max_fds);
    let mut events = Vec::new();
    if let Some(mut batch) = batch {
        if tail.is_none() && publish(shared.buffers, &batch.data, &batch.meta, &mut batch.fds) {
            let count = batch.count() as i32;
            shared.state.borrow_mut().spare_batch = batch.into_spare();
            return count;
        }
        events.push(Event::Messages(batch));
    }
    events.extend(tail);
    let delivered = !events.is_empty();
    deliver(shared, events, false);
    if delivered {
        -1
    } else {
        0
    }
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            Status::GenericFailure,
            format!("napi call failed with status {status}"),
        ))
    }
}

fn closed_error() -> CoreError {
    CoreError::os(Errno::EBADF, "fdpass")
}

fn send(shared: &Rc<Shared>, data: &[u8], fds: &[i32]) -> std::result::Result<bool, CoreError> {
    let sent_now = try_send(&mut shared.state.borrow_mut(), data, fds)?;
    if !sent_now {
        update_poll(shared)?;
    }
    Ok(sent_now)
}

fn try_send(state: &mut State, data: &[u8], fds: &[i32]) -> std::result::Result<bool, CoreError> {
    let Some(fd) = state.fd.as_ref() else {
        return Err(closed_error());
    };
    let header;
    let mut iov = [IoSlice::new(&[]), IoSlice::new(data)];
    let iov: &[IoSlice<'_>] = if state.framing {
        let len = u32::try_from(data.len()).map_err(|_| CoreError::InvalidArgument {
            reason: "a message is limited to 4 GiB".into(),
        })?;
        header = encode_header(len, fds.len() as u16);
        iov[0] = IoSlice::new(&header);
        &iov
    } else {
        &iov[1..]
    };
    let total: usize = iov.iter().map(|s| s.len()).sum();
    fdpass::check_send(total, fds.len())?;
    if !state.writes.is_empty() {
        let dups = duplicate(fds)?;
        queue_write(state, iov, 0, dups);
        return Ok(false);
    }
    match fdpass::send_vectored_waiting(fd.as_fd(), iov, fds, Wait::Never) {
        Ok(n) if n == total => Ok(true),
        Ok(n) => {
            // A partial stream send: the fds went with the first byte; the
            // rest goes later, without them.
            queue_write(state, iov, n, Vec::new());
            Ok(false)
        }
        Err(e) if e.would_block() => {
            let dups = duplicate(fds)?;
            queue_write(state, iov, 0, dups);
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn duplicate(fds: &[i32]) -> std::result::Result<Vec<OwnedFd>, CoreError> {
    fds.iter()
        .map(|&fd| {
            if fd < 0 {
                return Err(CoreError::os(Errno::EBADF, "fcntl"));
            }
            // SAFETY: borrowed only for the duplication.
            fdpass::dup_cloexec(unsafe { BorrowedFd::borrow_raw(fd) })
        })
        .collect()
}

fn queue_write(state: &mut State, iov: &[IoSlice<'_>], skip: usize, fds: Vec<OwnedFd>) {
    let mut bytes = Vec::with_capacity(iov.iter().map(|s| s.len()).sum::<usize>() - skip);
    let mut skip = skip;
    for slice in iov {
        let s: &[u8] = slice;
        if skip >= s.len() {
            skip -= s.len();
            continue;
        }
        bytes.extend_from_slice(&s[skip..]);
        skip = 0;
    }
    state.queued_bytes += bytes.len();
    state.writes.push_back(PendingWrite {
        bytes,
        offset: 0,
        fds,
    });
}

/// Sends what the queue holds until the kernel pushes back.
fn flush_writes(state: &mut State) -> Vec<Event> {
    let mut completed = 0u32;
    let mut events = Vec::new();
    let Some(fd) = state.fd.as_ref() else {
        return events;
    };
    while let Some(write) = state.writes.front_mut() {
        let raw: Vec<i32> = write.fds.iter().map(AsRawFd::as_raw_fd).collect();
        match fdpass::send_vectored_waiting(
            fd.as_fd(),
            &[IoSlice::new(&write.bytes[write.offset..])],
            &raw,
            Wait::Never,
        ) {
            Ok(n) => {
                // The kernel holds its own references now.
                write.fds.clear();
                write.offset += n;
                state.queued_bytes -= n;
                if write.offset < write.bytes.len() {
                    break;
                }
                state.writes.pop_front();
                completed += 1;
            }
            Err(e) if e.would_block() => break,
            Err(e) => {
                let failed = state.writes.len() as u32;
                state.writes.clear();
                state.queued_bytes = 0;
                if completed > 0 {
                    events.push(Event::Written(completed));
                }
                events.push(Event::WriteError(e, failed));
                return events;
            }
        }
    }
    if completed > 0 {
        events.push(Event::Written(completed));
    }
    events
}

/// Reads up to `max` messages (or accepted connections) without blocking,
/// stopping after the message that brings the batch to `max_fds` fds.
fn read_events(shared: &Rc<Shared>, max: usize, max_fds: usize) -> Vec<Event> {
    if shared.state.borrow().listening {
        let mut state = shared.state.borrow_mut();
        if state.fd.is_none() || max == 0 {
            return Vec::new();
        }
        return accept_events(&mut state, max);
    }
    let (batch, tail) = read_batch(shared, max, max_fds);
    let mut events = Vec::new();
    events.extend(batch.map(Event::Messages));
    events.extend(tail);
    events
}

/// Reads up to `max` messages: the batch (if any message came) and what
/// ended the read, if something did (end of stream, an error).
fn read_batch(shared: &Rc<Shared>, max: usize, max_fds: usize) -> (Option<Batch>, Option<Event>) {
    let mut state = shared.state.borrow_mut();
    let state = &mut *state;
    if state.fd.is_none() || state.eof || max == 0 || state.listening {
        return (None, None);
    }
    let mut batch = state.spare_batch.take().unwrap_or_default();
    batch.reset();
    let mut tail = None;
    let outcome = if state.framing {
        read_frames(state, (max, max_fds), &mut batch)
    } else {
        read_datagrams(state, (max, max_fds), &mut batch)
    };
    match outcome {
        Ok(()) => {}
        Err(ReadEnd::Eof) => {
            state.eof = true;
            tail = Some(Event::End);
        }
        Err(ReadEnd::Failed(e)) => tail = Some(Event::Error(e)),
    }
    if batch.count() == 0 {
        state.spare_batch = batch.into_spare();
        return (None, tail);
    }
    (Some(batch), tail)
}

enum ReadEnd {
    Eof,
    Failed(CoreError),
}

fn read_frames(
    state: &mut State,
    limits: (usize, usize),
    batch: &mut Batch,
) -> std::result::Result<(), ReadEnd> {
    let Some(sock) = state.fd.as_ref() else {
        return Ok(());
    };
    loop {
        while !batch.is_full(limits) {
            let error = match state.decoder.next_frame() {
                Ok(Some(frame)) => {
                    batch.push(frame.payload, frame.fds);
                    continue;
                }
                Ok(None) => break,
                Err(e) => e,
            };
            state.decoder.clear();
            return Err(ReadEnd::Failed(error));
        }
        // The fds the decoder holds for a frame still incomplete count
        // against the fd room as well. A batch with no message yet reads
        // anyway, or a receive would wait forever for its frame: the decoder
        // then holds only that frame's fds (FrameDecoder::next_frame fails
        // at once on any others), so one read passes the room by at most one
        // message's fds.
        let held = batch.fds.len() + state.decoder.queued_fds();
        if !batch.may_read(limits) || (batch.count() > 0 && held >= limits.1) {
            return Ok(());
        }
        let spare = state.decoder.spare(READ_CHUNK);
        let fds = &mut state.received_fds;
        match fdpass::recv_fds_append_waiting(
            sock.as_fd(),
            spare,
            MAX_FDS_PER_MESSAGE,
            &mut state.control,
            fds,
            Wait::Never,
        ) {
            Ok(0) if fds.is_empty() => {
                state.decoder.commit(0, Vec::new());
                if state.decoder.is_mid_frame() {
                    state.decoder.clear();
                    return Err(ReadEnd::Failed(CoreError::Protocol {
                        reason: "the peer closed the connection in the middle of a message".into(),
                    }));
                }
                return Err(ReadEnd::Eof);
            }
            Ok(len) => state.decoder.commit_from(len, fds),
            Err(e) => {
                state.decoder.commit(0, Vec::new());
                if e.would_block() {
                    return Ok(());
                }
                state.decoder.clear();
                return Err(ReadEnd::Failed(e));
            }
        }
    }
}

fn read_datagrams(
    state: &mut State,
    limits: (usize, usize),
    batch: &mut Batch,
) -> std::result::Result<(), ReadEnd> {
    let Some(sock) = state.fd.as_ref() else {
        return Ok(());
    };
    let mut scratch = DatagramScratch::take(state.max_bytes);
    while batch.may_read(limits) {
        let buf = &mut scratch.0[..state.max_bytes];
        let first = batch.fds.len();
        match fdpass::recv_fds_append_waiting(
            sock.as_fd(),
            buf,
            state.max_fds,
            &mut state.control,
            &mut batch.fds,
            Wait::Never,
        ) {
            Ok(len) => {
                if len == 0 && batch.fds.len() == first && state.kind != SocketType::Datagram {
                    return Err(ReadEnd::Eof);
                }
                batch.push_received(&buf[..len], first);
            }
            Err(e) if e.would_block() => return Ok(()),
            // A seqpacket peer that closed with our messages unread makes the
            // kernel report ECONNRESET *before* the messages it had sent us
            // (reading the error clears it). Read those first, as a stream
            // does; the end of the stream follows them.
            Err(e) if e.errno() == Some(libc::ECONNRESET) && state.kind == SocketType::SeqPacket => continue,
            Err(e) => return Err(ReadEnd::Failed(e)),
        }
    }
    Ok(())
}

fn accept_events(state: &mut State, max: usize) -> Vec<Event> {
    let Some(sock) = state.fd.as_ref() else {
        return Vec::new();
    };
    let mut accepted = Vec::new();
    while accepted.len() < max {
        match fdpass::unix::accept(sock.as_fd()) {
            Ok(Some(fd)) => accepted.push(fd),
            Ok(None) => break,
            Err(e) if matches!(e.errno(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                // Out of fds: report it, keep listening.
                let mut events = Vec::new();
                if !accepted.is_empty() {
                    events.push(Event::Accepted(accepted));
                }
                events.push(Event::WriteError(e, 0));
                return events;
            }
            Err(e) => {
                let mut events = Vec::new();
                if !accepted.is_empty() {
                    events.push(Event::Accepted(accepted));
                }
                events.push(Event::Error(e));
                return events;
            }
        }
    }
    if accepted.is_empty() {
        Vec::new()
    } else {
        vec![Event::Accepted(accepted)]
    }
}

/// Asks the loop to watch for what is needed now, and keeps the JavaScript
/// callback alive exactly while something is pending.
fn update_poll(shared: &Rc<Shared>) -> std::result::Result<(), CoreError> {
    let mut state = shared.state.borrow_mut();
    let state = &mut *state;
    let Some(fd) = state.fd.as_ref().map(AsRawFd::as_raw_fd) else {
        return Ok(());
    };
    let mut wanted = 0;
    if state.read_room > 0 && !state.eof {
        wanted |= READABLE;
    }
    if !state.writes.is_empty() {
        wanted |= WRITABLE;
    }
    if wanted != 0 && state.poll.is_none() {
        let mut lp = ptr::null_mut();
        // SAFETY: the env is live on this thread.
        let status = unsafe { sys::napi_get_uv_event_loop(shared.env, &mut lp) };
        if status != sys::Status::napi_ok {
            return Err(CoreError::os(Errno::EINVAL, "napi_get_uv_event_loop"));
        }
        let data = Rc::into_raw(shared.clone()) as *mut c_void;
        // SAFETY: the loop is this thread's; the fd stays open until the
        // handle's close callback; `data` holds one count of the Rc.
        match unsafe { Poll::new(lp, fd, data) } {
            Ok(poll) => {
                if !state.refed {
                    poll.set_ref(false);
                }
                state.poll = Some(poll);
            }
            Err(code) => {
                // SAFETY: takes back the count that no handle holds.
                drop(unsafe { Rc::from_raw(data as *const Shared) });
                return Err(CoreError::os(Errno::from_raw(-code), "uv_poll_init"));
            }
        }
    }
    if wanted != state.events {
        if let Some(poll) = &state.poll {
            let r = poll.set(wanted, on_poll);
            if r != 0 {
                return Err(CoreError::os(Errno::from_raw(-r), "uv_poll_start"));
            }
        }
        state.events = wanted;
    }
    set_callback_strength(shared.env, state, wanted != 0);
    Ok(())
}

fn set_callback_strength(env: sys::napi_env, state: &mut State, strong: bool) {
    if state.callback.is_null() || state.callback_strong == strong {
        return;
    }
    let mut count = 0;
    // SAFETY: the reference belongs to this env and is still alive.
    unsafe {
        if strong {
            sys::napi_reference_ref(env, state.callback, &mut count);
        } else {
            sys::napi_reference_unref(env, state.callback, &mut count);
        }
    }
    state.callback_strong = strong;
}

unsafe extern "C" fn on_poll(handle: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: the handle's data holds a count of the Rc until its close
    // callback, which cannot have run while the loop calls this one.
    let shared = unsafe { &*(Poll::data_of(handle) as *const Shared) };
    // Keep the state alive for the whole callback, whatever JavaScript does.
    // SAFETY: adds a count to an Rc that is alive (see above).
    let shared = unsafe {
        Rc::increment_strong_count(shared as *const Shared);
        Rc::from_raw(shared as *const Shared)
    };
    let mut out = Vec::new();
    // An error status (POLLERR/POLLHUP reported as a uv error) says little:
    // let the syscalls report what happened (ECONNRESET, EPIPE, end of stream).
    let events = if status < 0 {
        shared.state.borrow().events
    } else {
        events
    };
    if events & WRITABLE != 0 {
        let mut state = shared.state.borrow_mut();
        out.extend(flush_writes(&mut state));
    }
    let (room, fd_room) = {
        let state = shared.state.borrow();
        (state.read_room, state.read_fd_room)
    };
    if events & READABLE != 0 && room > 0 {
        out.extend(read_events(&shared, room, fd_room));
    }
    if status < 0 && out.is_empty() {
        out.push(Event::Error(CoreError::os(Errno::from_raw(-status), "uv_poll")));
    }
    let _ = update_poll(&shared);
    deliver(&shared, out, true);
}

unsafe extern "C" fn on_close(handle: *mut c_void) {
    // SAFETY: this is the close callback of a handle made by Poll::new, whose
    // data holds one count of the Rc.
    unsafe {
        let data = Poll::data_of(handle) as *const Shared;
        Poll::free(handle);
        // The fd was closed by close(); this releases the handle's count.
        drop(Rc::from_raw(data));
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
        poll.close(on_close);
    }
    drop(fd);
}

/// Marks the socket closed and lets go of everything but the poll handle and
/// the fd, which it returns for `close` to let go of in that order.
fn close_state(shared: &Rc<Shared>) -> (Option<Poll>, Option<OwnedFd>) {
    let mut state = shared.state.borrow_mut();
    if state.closed {
        return (None, None);
    }
    state.closed = true;
    state.writes.clear();
    state.queued_bytes = 0;
    state.decoder.clear();
    state.read_room = 0;
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
    if !state.callback.is_null() {
        // SAFETY: the reference belongs to this env, which is alive: from
        // JavaScript, from a finalizer or from the env's cleanup hook.
        unsafe {
            sys::napi_delete_reference(env, state.callback);
            sys::napi_async_destroy(env, state.async_context);
        }
        state.callback = ptr::null_mut();
    }
    (state.poll.take(), state.fd.take())
}

/// Hands events to the JavaScript callback. From the event loop the calls are
/// made inside one callback scope (`napi_open_callback_scope`), so that
/// microtasks and `nextTick` run once JavaScript has the whole batch, as after
/// any Node I/O callback. Not between its events: code awaiting the first
/// message of a batch typically calls `receive()` again at once, and must find
/// the rest of the batch (and the end or error that closed the read) queued
/// rather than read the socket past it.
fn deliver(shared: &Rc<Shared>, events: Vec<Event>, from_loop: bool) {
    if events.is_empty() {
        return;
    }
    let nested = from_loop && shared_buffers::begin_loop_delivery(shared.buffers);
    deliver_events(shared, events, from_loop);
    if from_loop {
        shared_buffers::end_loop_delivery(shared.env, shared.buffers, nested);
    }
}

/// See [`deliver`].
fn deliver_events(shared: &Rc<Shared>, events: Vec<Event>, from_loop: bool) {
    let env = shared.env;
    // SAFETY: raw napi calls on this thread's env; a handle scope bounds every
    // value created here, and the callback scope opened here is closed here.
    unsafe {
        let mut scope = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        let mut callback_scope = ptr::null_mut();
        if from_loop {
            let (callback, async_context) = {
                let state = shared.state.borrow();
                (state.callback, state.async_context)
            };
            // Closed already: nobody takes these events (dropping them closes their fds).
            if callback.is_null()
                || sys::napi_open_callback_scope(env, ptr::null_mut(), async_context, &mut callback_scope)
                    != sys::Status::napi_ok
            {
                sys::napi_close_handle_scope(env, scope);
                return;
            }
        }
        for event in events {
            let callback = shared.state.borrow().callback;
            if callback.is_null() {
                break; // closed from JavaScript meanwhile: what is left is dropped (and closed).
            }
            let mut func = ptr::null_mut();
            if sys::napi_get_reference_value(env, callback, &mut func) != sys::Status::napi_ok
                || func.is_null()
            {
                break;
            }
            let Some(args) = event_args(env, event, shared.buffers) else {
                continue;
            };
            let mut global = ptr::null_mut();
            sys::napi_get_global(env, &mut global);
            let mut result = ptr::null_mut();
            let status = sys::napi_call_function(env, global, func, 3, args.as_ptr(), &mut result);
            if status == sys::Status::napi_pending_exception && from_loop {
                let mut error = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut error);
                sys::napi_fatal_exception(env, error);
                break;
            }
            if status != sys::Status::napi_ok {
                break;
            }
        }
        if !callback_scope.is_null() {
            sys::napi_close_callback_scope(env, callback_scope);
        }
        sys::napi_close_handle_scope(env, scope);
    }
}

/// Builds `(kind, a, b)` for an event. Received fds stay owned (and are closed
/// if building fails) until the values exist.
unsafe fn event_args(
    env: sys::napi_env,
    event: Event,
    buffers: Option<usize>,
) -> Option<[sys::napi_value; 3]> {
    let mut kind = ptr::null_mut();
    let mut a = ptr::null_mut();
    let mut b = ptr::null_mut();
    sys::napi_get_undefined(env, &mut a);
    sys::napi_get_undefined(env, &mut b);
    let code = match event {
        Event::Messages(Batch { data, meta, mut fds }) => {
            if publish(buffers, &data, &meta, &mut fds) {
                sys::napi_create_int32(env, meta[0], &mut a);
                sys::napi_create_int32(env, EV_PUBLISHED, &mut kind);
                return Some([kind, a, b]);
            }
            a = buffer(env, &data)?;
            b = int32_array(env, &meta)?;
            crate::held_fds::mark(buffers, &fds);
            fds.into_iter().for_each(|fd| {
                let _ = fd.into_raw_fd();
            });
            EV_MESSAGES
        }
        Event::Accepted(fds) => {
            let mut meta = Vec::with_capacity(fds.len() + 1);
            meta.push(fds.len() as i32);
            meta.extend(fds.iter().map(AsRawFd::as_raw_fd));
            b = int32_array(env, &meta)?;
            fds.into_iter().for_each(|fd| {
                let _ = fd.into_raw_fd();
            });
            EV_ACCEPTED
        }
        Event::End => EV_END,
        Event::Error(e) => {
            a = build_error(env, &e, &e.to_string())?;
            EV_ERROR
        }
        Event::Written(n) => {
            sys::napi_create_uint32(env, n, &mut a);
            EV_WRITTEN
        }
        Event::WriteError(e, n) => {
            a = build_error(env, &e, &e.to_string())?;
            sys::napi_create_uint32(env, n, &mut b);
            EV_WRITE_ERROR
        }
    };
    sys::napi_create_int32(env, code, &mut kind);
    Some([kind, a, b])
}

unsafe fn buffer(env: sys::napi_env, data: &[u8]) -> Option<sys::napi_value> {
    let mut value = ptr::null_mut();
    let mut out = ptr::null_mut();
    (sys::napi_create_buffer_copy(env, data.len(), data.as_ptr().cast(), &mut out, &mut value)
        == sys::Status::napi_ok)
        .then_some(value)
}

unsafe fn int32_array(env: sys::napi_env, values: &[i32]) -> Option<sys::napi_value> {
    let bytes = std::mem::size_of_val(values);
    let mut data = ptr::null_mut();
    let mut arraybuffer = ptr::null_mut();
    if sys::napi_create_arraybuffer(env, bytes, &mut data, &mut arraybuffer) != sys::Status::napi_ok {
        return None;
    }
    if bytes > 0 {
        ptr::copy_nonoverlapping(values.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes);
    }
    let mut array = ptr::null_mut();
    (sys::napi_create_typedarray(
        env,
        sys::TypedarrayType::int32_array,
        values.len(),
        arraybuffer,
        0,
        &mut array,
    ) == sys::Status::napi_ok)
        .then_some(array)
}

// Keep the header length in one place for the TypeScript layer's docs.
const _: () = assert!(HEADER_LEN == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_no_more_past_its_message_fd_or_byte_limit() {
        let mut batch = Batch::default();
        batch.reset();
        let limits = (4096, 1024);
        let payload = vec![7u8; READ_CHUNK];
        let mut pushed = 0;
        while batch.may_read(limits) {
            batch.push(&payload, std::iter::empty());
            pushed += 1;
        }
        // However many messages were asked for, the bytes stop the reads,
        // but the batch is not full: held frames may still join it.
        assert_eq!(pushed, BATCH_BYTES / READ_CHUNK);
        assert_eq!(batch.count(), pushed);
        assert!(!batch.is_full(limits));

        batch.reset();
        assert!(batch.may_read(limits));
        batch.push(b"x", std::iter::empty());
        assert!(batch.is_full((1, 1024)), "one message asked for");
        assert!(!batch.may_read((1, 1024)));
    }
}
