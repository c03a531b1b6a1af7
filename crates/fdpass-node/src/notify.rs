//! The service manager side of `fdpass/systemd`: one notification datagram
//! (`sd_notify`), and close-on-exec for the fds a manager passed in. The
//! TypeScript layer reads the environment and checks every argument first.

use napi::bindgen_prelude::{Buffer, Result};
use napi::Env;
use napi_derive::napi;

use fdpass::notify::{notify, NotifyAddress};

use crate::errors::OrThrow;

/// Sends `state` with `fds` (which stay the caller's) to the notification
/// socket named by `socket`, the value of `$NOTIFY_SOCKET`.
#[napi(js_name = "notifySend")]
pub fn notify_send(env: Env, socket: Buffer, state: Buffer, fds: Vec<i32>) -> Result<()> {
    let address = NotifyAddress::parse(&socket).or_throw(&env)?;
    notify(&address, &state, &fds).or_throw(&env)
}

/// Sets close-on-exec on each of `fds` (inherited from a service manager),
/// stopping at the first that fails (EBADF: not open).
#[napi(js_name = "setCloexec")]
pub fn set_cloexec(env: Env, fds: Vec<i32>) -> Result<()> {
    for fd in fds {
        fdpass::fd::set_cloexec(fd).or_throw(&env)?;
    }
    Ok(())
}
