//! Pass open file descriptors between processes over Unix domain sockets
//! (`SCM_RIGHTS`), with the care the kernel interfaces demand:
//!
//! - exactly one `SCM_RIGHTS` control message per send, at most 253 fds, never
//!   with an empty payload, only on `AF_UNIX` sockets, never raising SIGPIPE;
//! - a receive buffer sized for the kernel's maximum whatever the caller
//!   accepts, control data parsed with bounds checks, every received fd owned
//!   ([`std::os::fd::OwnedFd`]) and close-on-exec, and every fd of a truncated
//!   or refused message closed before the error is returned;
//! - no `MSG_PEEK`, ever.
//!
//! Linux and macOS are supported.

#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
compile_error!("fdpass supports Linux and macOS");

pub mod alloc;
pub mod cmsg;
pub mod conn;
pub mod error;
pub mod fd;
pub mod frame;
pub mod half_close;
pub mod held_fds;
pub mod id_table;
pub mod memfd;
pub mod message;
pub mod notify;
pub mod region;
pub mod shared_buffers;
pub mod socket;
pub mod socket_file;
pub mod socket_info;
pub mod unix;
pub mod wire_constants;

pub use error::{Error, Result, MAX_FDS_PER_MESSAGE};
pub use fd::{close_fds, dup_cloexec, fd_kind, is_cloexec, set_nonblocking, FdKind};
pub use memfd::{memfd, MAX_MEMFD_NAME};
pub use message::{
    check_send, recv_fds, recv_fds_append, recv_fds_append_waiting, recv_fds_with, send_fds,
    send_fds_on_unix, send_vectored, send_vectored_waiting, Received, Wait,
};
pub use socket::{ensure_unix, new_socket, socket_pair, socket_type, SocketType};
