//! Node-API and libuv plumbing for a native addon whose fds Node's own event
//! loop watches: the watched fd and its callback ([`watch`]) over the poll
//! handle ([`uv`]), JavaScript functions the loop
//! calls back with their async context ([`loop_callback`]), values the native
//! side keeps alive and small conversions ([`values`]), Node-style error
//! objects ([`errors`]), plain napi functions that share per-environment data
//! ([`plain`]). It knows nothing of what the addon does with its fds: the
//! fdpass binding (`crates/fdpass-node`) converts and calls through it.
//!
//! Every function that takes a raw `napi_env` is `unsafe`: the env must be the
//! live env of the current thread, as each one's Safety section says.

pub mod errors;
pub mod loop_callback;
pub mod plain;
pub mod uv;
pub mod values;
pub mod watch;
