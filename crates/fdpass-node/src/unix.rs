//! Named sockets for the TypeScript layer: create, bind, listen, connect,
//! and the checks `listen` needs. Paths arrive as bytes, so that a leading
//! NUL (a Linux abstract name) survives.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use fdpass::socket_file::{self, PathLock};
use fdpass::unix::{self, Connect};
use fdpass::SocketType;
use napi::bindgen_prelude::Result;
use napi::Env;
use napi_derive::napi;

use crate::errors::OrThrow;
use crate::values::borrow_fd;

fn kind(env: &Env, name: &str) -> Result<SocketType> {
    SocketType::from_name(name).or_throw(env)
}

/// A new blocking, close-on-exec `AF_UNIX` socket of `type`. fdpass reads
/// and writes it per call without blocking (`MSG_DONTWAIT`), so its mode is
/// left as its owner, or a process it is handed to, expects.
#[napi(js_name = "unixSocket")]
pub fn unix_socket(env: Env, socket_type: String) -> Result<i32> {
    let fd = fdpass::new_socket(kind(&env, &socket_type)?).or_throw(&env)?;
    Ok(fd.into_raw_fd())
}

/// Binds `fd` to `path`.
#[napi(js_name = "bindUnix")]
pub fn bind_unix(env: Env, fd: i32, path: &[u8]) -> Result<()> {
    let fd = borrow_fd(&env, fd)?;
    let addr = unix::unix_addr(path, "bind").or_throw(&env)?;
    unix::bind(fd, &addr).or_throw(&env)
}

/// Starts listening on a bound socket fdpass created, and makes it
/// non-blocking: accept has no per-call non-blocking flag (accept4's
/// SOCK_NONBLOCK applies to the new socket only), and a blocking accept after
/// a readiness event could hang the event loop if another holder of the
/// listener took the connection first. Nobody else holds this socket yet, so
/// nobody's mode changes; a process it is handed to later sees O_NONBLOCK,
/// as with the listening sockets of Node's own `net.Server`.
#[napi(js_name = "listenUnix")]
pub fn listen_unix(env: Env, fd: i32, backlog: i32) -> Result<()> {
    let fd = borrow_fd(&env, fd)?;
    unix::listen(fd, backlog).or_throw(&env)?;
    fdpass::set_nonblocking(fd, true).or_throw(&env)
}

/// Connects `fd` (a socket fdpass created, held by nobody else yet) to
/// `path`: true when connected, false when the listener's backlog is full and
/// the caller should retry shortly. The connect itself is non-blocking (a
/// full backlog would otherwise block the event loop); once connected the
/// socket is blocking again, as its owner and the processes it may be handed
/// to expect.
#[napi(js_name = "connectUnix")]
pub fn connect_unix(env: Env, fd: i32, path: &[u8]) -> Result<bool> {
    let fd = borrow_fd(&env, fd)?;
    let addr = unix::unix_addr(path, "connect").or_throw(&env)?;
    fdpass::set_nonblocking(fd, true).or_throw(&env)?;
    match unix::connect(fd, &addr).or_throw(&env)? {
        Connect::Done => {
            fdpass::set_nonblocking(fd, false).or_throw(&env)?;
            Ok(true)
        }
        Connect::Retry => Ok(false),
    }
}

/// Whether a server accepts connections at `path` (to tell a stale socket
/// file from a live one).
#[napi(js_name = "isListening")]
pub fn is_listening(env: Env, path: &[u8], socket_type: String) -> Result<bool> {
    let addr = unix::unix_addr(path, "connect").or_throw(&env)?;
    unix::is_listening(kind(&env, &socket_type)?, &addr).or_throw(&env)
}

/// The type of a socket, after checking that it is `AF_UNIX`.
#[napi(js_name = "unixSocketType")]
pub fn unix_socket_type(env: Env, fd: i32) -> Result<&'static str> {
    let fd = borrow_fd(&env, fd)?;
    fdpass::ensure_unix(fd).or_throw(&env)?;
    fdpass::socket_type(fd).map(SocketType::name).or_throw(&env)
}

/// Takes the lock on the lock file at `path` (see fdpass::socket_file)
/// without waiting: its fd, which holds it until `unlockFile`, or -1 while
/// another process holds it.
#[napi(js_name = "lockFile")]
pub fn lock_file(env: Env, path: &[u8]) -> Result<i32> {
    match PathLock::try_lock(path).or_throw(&env)? {
        Some(lock) => Ok(lock.into_fd().into_raw_fd()),
        None => Ok(-1),
    }
}

/// Removes the lock file at `path` and releases the lock held by `fd`
/// (from `lockFile`, whose ownership comes back here).
#[napi(js_name = "unlockFile")]
pub fn unlock_file(env: Env, path: &[u8], fd: i32) -> Result<()> {
    let _ = borrow_fd(&env, fd)?;
    // SAFETY: JavaScript hands back the fd lockFile gave it, which only it owned.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    PathLock::from_fd(fd, path).or_throw(&env)?.release();
    Ok(())
}

/// Gives the file that binding `fd` creates the permissions `mode` from its
/// creation on, where the platform allows (Linux).
#[napi(js_name = "presetSocketMode")]
pub fn preset_socket_mode(env: Env, fd: i32, mode: u32) -> Result<()> {
    let fd = borrow_fd(&env, fd)?;
    socket_file::preset_mode(fd, mode).or_throw(&env)
}

/// Sets the permissions of the socket file at `path`, not following links.
#[napi(js_name = "chmodSocketFile")]
pub fn chmod_socket_file(env: Env, path: &[u8], mode: u32) -> Result<()> {
    socket_file::chmod_socket_file(path, mode).or_throw(&env)
}
