//! Named sockets for the TypeScript layer: create, bind, listen, connect,
//! and the checks `listen` needs. Paths arrive as bytes, so that a leading
//! NUL (a Linux abstract name) survives.

use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};

use fdpass::socket_file::{self, PathLock};
use fdpass::unix::{self, Connect};
use fdpass::SocketType;
use napi::bindgen_prelude::Result;
use napi::Env;
use napi_derive::napi;

use crate::errors::throw;
use crate::values::borrow_fd;

fn kind(env: &Env, name: &str) -> Result<SocketType> {
    SocketType::from_name(name).map_err(|e| throw(env, &e))
}

/// A new non-blocking, close-on-exec `AF_UNIX` socket of `type`.
#[napi(js_name = "unixSocket")]
pub fn unix_socket(env: Env, socket_type: String) -> Result<i32> {
    let fd = fdpass::new_socket(kind(&env, &socket_type)?).map_err(|e| throw(&env, &e))?;
    fdpass::set_nonblocking(fd.as_fd(), true).map_err(|e| throw(&env, &e))?;
    Ok(fd.into_raw_fd())
}

/// Binds `fd` to `path`.
#[napi(js_name = "bindUnix")]
pub fn bind_unix(env: Env, fd: i32, path: &[u8]) -> Result<()> {
    let fd = borrow_fd(&env, fd)?;
    let addr = unix::unix_addr(path, "bind").map_err(|e| throw(&env, &e))?;
    unix::bind(fd, &addr).map_err(|e| throw(&env, &e))
}

/// Starts listening on a bound socket.
#[napi(js_name = "listenUnix")]
pub fn listen_unix(env: Env, fd: i32, backlog: i32) -> Result<()> {
    let fd = borrow_fd(&env, fd)?;
    unix::listen(fd, backlog).map_err(|e| throw(&env, &e))
}

/// Connects `fd` to `path`: true when connected, false when the listener's
/// backlog is full and the caller should retry shortly.
#[napi(js_name = "connectUnix")]
pub fn connect_unix(env: Env, fd: i32, path: &[u8]) -> Result<bool> {
    let fd = borrow_fd(&env, fd)?;
    let addr = unix::unix_addr(path, "connect").map_err(|e| throw(&env, &e))?;
    match unix::connect(fd, &addr).map_err(|e| throw(&env, &e))? {
        Connect::Done => Ok(true),
        Connect::Retry => Ok(false),
    }
}

/// Whether a server accepts connections at `path` (to tell a stale socket
/// file from a live one).
#[napi(js_name = "isListening")]
pub fn is_listening(env: Env, path: &[u8], socket_type: String) -> Result<bool> {
    let addr = unix::unix_addr(path, "connect").map_err(|e| throw(&env, &e))?;
    unix::is_listening(kind(&env, &socket_type)?, &addr).map_err(|e| throw(&env, &e))
}

/// The type of a socket, after checking that it is `AF_UNIX`.
#[napi(js_name = "unixSocketType")]
pub fn unix_socket_type(env: Env, fd: i32) -> Result<&'static str> {
    let fd = borrow_fd(&env, fd)?;
    fdpass::ensure_unix(fd).map_err(|e| throw(&env, &e))?;
    fdpass::socket_type(fd)
        .map(SocketType::name)
        .map_err(|e| throw(&env, &e))
}

/// Takes the lock on the lock file at `path` (see fdpass::socket_file)
/// without waiting: its fd, which holds it until `unlockFile`, or -1 while
/// another process holds it.
#[napi(js_name = "lockFile")]
pub fn lock_file(env: Env, path: &[u8]) -> Result<i32> {
    match PathLock::try_lock(path).map_err(|e| throw(&env, &e))? {
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
    PathLock::from_fd(fd, path)
        .map_err(|e| throw(&env, &e))?
        .release();
    Ok(())
}

/// Gives the file that binding `fd` creates the permissions `mode` from its
/// creation on, where the platform allows (Linux).
#[napi(js_name = "presetSocketMode")]
pub fn preset_socket_mode(env: Env, fd: i32, mode: u32) -> Result<()> {
    let fd = borrow_fd(&env, fd)?;
    socket_file::preset_mode(fd, mode).map_err(|e| throw(&env, &e))
}

/// Sets the permissions of the socket file at `path`, not following links.
#[napi(js_name = "chmodSocketFile")]
pub fn chmod_socket_file(env: Env, path: &[u8], mode: u32) -> Result<()> {
    socket_file::chmod_socket_file(path, mode).map_err(|e| throw(&env, &e))
}
