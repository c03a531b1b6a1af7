//! Errors of the fdpass core.
//!
//! Every error carries what a Node.js-style error needs: a `code` (`"EPIPE"` for
//! an operating-system error, `"ERR_*"` for one of ours), the errno when there is
//! one, the syscall that failed, and a message that says what to do about it.

use std::fmt;

use nix::errno::Errno;

/// The most fds one message may carry (Linux `SCM_MAX_FD`).
pub const MAX_FDS_PER_MESSAGE: usize = 253;

/// An error from the fdpass core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A syscall failed.
    Os {
        /// The errno it failed with.
        errno: Errno,
        /// The syscall, e.g. `"sendmsg"`.
        syscall: &'static str,
    },
    /// More fds than one message can carry were given to a send.
    TooManyFds {
        /// How many were given.
        count: usize,
    },
    /// Fds were given with no data: a 0-byte stream send drops them silently.
    EmptyData,
    /// The socket is not an `AF_UNIX` socket, so it cannot carry fds.
    NotUnixSocket {
        /// The address family it has.
        family: i32,
    },
    /// More fds arrived than the receiver accepts, or the kernel truncated the
    /// control data. Every fd that did arrive has been closed.
    FdsTruncated {
        /// How many fds arrived (before they were closed).
        received: usize,
        /// The most the receiver accepts.
        max_fds: usize,
        /// Whether the kernel reported `MSG_CTRUNC`.
        kernel_truncated: bool,
    },
    /// A datagram or seqpacket message was longer than the receive buffer.
    /// Its fds have been closed and the rest of the message discarded.
    MessageTruncated {
        /// The size of the receive buffer.
        max_bytes: usize,
    },
    /// The peer broke the framing protocol; the connection cannot be trusted.
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// A socket path does not fit in `sun_path`.
    PathTooLong {
        /// Its length in bytes.
        len: usize,
        /// The most this platform allows.
        max: usize,
        /// The syscall it was meant for.
        syscall: &'static str,
    },
    /// A value passed in is out of range or of the wrong kind.
    InvalidArgument {
        /// What was wrong.
        reason: String,
    },
    /// The platform does not support the operation.
    Unsupported {
        /// What is missing.
        reason: &'static str,
        /// The syscall that reported it, if any.
        syscall: &'static str,
        /// The errno it reported.
        errno: Errno,
    },
}

/// The JavaScript class Node.js uses for an error's code, for bindings that
/// raise these errors in JavaScript: `ERR_INVALID_ARG_VALUE` is a `TypeError`
/// in Node, a count over a limit a `RangeError`, the rest an `Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// `Error`.
    Error,
    /// `TypeError`.
    TypeError,
    /// `RangeError`.
    RangeError,
}

/// Result alias of the fdpass core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An OS error from `syscall`.
    pub fn os(errno: Errno, syscall: &'static str) -> Self {
        Error::Os { errno, syscall }
    }

    /// The error code, as Node.js names it: `"EPIPE"`, `"ERR_TOO_MANY_FDS"`, ...
    pub fn code(&self) -> &'static str {
        match self {
            Error::Os { errno, .. } | Error::Unsupported { errno, .. } => errno_name(*errno),
            Error::TooManyFds { .. } => "ERR_TOO_MANY_FDS",
            Error::EmptyData => "ERR_EMPTY_DATA",
            Error::NotUnixSocket { .. } => "ERR_NOT_UNIX_SOCKET",
            Error::FdsTruncated { .. } => "ERR_FDS_TRUNCATED",
            Error::MessageTruncated { .. } => "ERR_MESSAGE_TRUNCATED",
            Error::Protocol { .. } => "ERR_FDPASS_PROTOCOL",
            Error::PathTooLong { .. } => "ENAMETOOLONG",
            Error::InvalidArgument { .. } => "ERR_INVALID_ARG_VALUE",
        }
    }

    /// The JavaScript class of the error (see [`ErrorClass`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidArgument { .. } => ErrorClass::TypeError,
            Error::TooManyFds { .. } => ErrorClass::RangeError,
            _ => ErrorClass::Error,
        }
    }

    /// The errno, positive, when the error came from the operating system.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { errno, .. } | Error::Unsupported { errno, .. } => Some(*errno as i32),
            Error::PathTooLong { .. } => Some(libc::ENAMETOOLONG),
            _ => None,
        }
    }

    /// The syscall that failed, when one did.
    pub fn syscall(&self) -> Option<&'static str> {
        match self {
            Error::Os { syscall, .. }
            | Error::Unsupported { syscall, .. }
            | Error::PathTooLong { syscall, .. } => Some(syscall),
            _ => None,
        }
    }

    /// Whether retrying later can succeed (the socket buffer was full).
    pub fn would_block(&self) -> bool {
        matches!(
            self,
            Error::Os {
                errno: Errno::EAGAIN,
                ..
            }
        )
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::os(Errno::from_raw(e.raw_os_error().unwrap_or(0)), "io")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os { errno, syscall } => {
                write!(f, "{syscall} {} ({})", errno_name(*errno), hint(*errno, syscall))
            }
            Error::Unsupported {
                reason,
                syscall,
                errno,
            } => {
                write!(f, "{syscall} {} ({reason})", errno_name(*errno))
            }
            Error::TooManyFds { count } => write!(
                f,
                "cannot send {count} fds in one message: the limit is {MAX_FDS_PER_MESSAGE} \
                 (split them over several messages)"
            ),
            Error::EmptyData => f.write_str(
                "fds need at least one byte of data to travel with (a 0-byte send on a stream \
                 socket drops them, and fdpass refuses it on every socket type): send at least \
                 one byte with them",
            ),
            Error::NotUnixSocket { family } => write!(
                f,
                "the socket is not a Unix domain socket (address family {family}): \
                 only AF_UNIX sockets can carry fds"
            ),
            Error::FdsTruncated {
                received,
                max_fds,
                kernel_truncated,
            } => {
                if *kernel_truncated {
                    write!(
                        f,
                        "the kernel truncated the fds of a message ({received} arrived, the rest were \
                         dropped: is the fd table full? check RLIMIT_NOFILE); the {received} that \
                         arrived were closed"
                    )
                } else {
                    write!(
                        f,
                        "a message carried {received} fds, more than maxFds ({max_fds}); they were \
                         all closed (raise maxFds to accept them)"
                    )
                }
            }
            Error::MessageTruncated { max_bytes } => write!(
                f,
                "a message was longer than maxBytes ({max_bytes}); its rest and its fds were \
                 discarded (raise maxBytes to accept it)"
            ),
            Error::Protocol { reason } => {
                write!(
                    f,
                    "the peer broke the fdpass framing protocol: {reason}; the connection was closed"
                )
            }
            Error::PathTooLong { len, max, syscall } => write!(
                f,
                "{syscall} ENAMETOOLONG (the socket path is {len} bytes, longer than the {max} bytes \
                 sun_path allows on this platform: use a shorter path)"
            ),
            Error::InvalidArgument { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {}

/// The symbolic name of an errno, e.g. `"EPIPE"`.
pub fn errno_name(errno: Errno) -> &'static str {
    // Errno's Debug form is its symbolic name; map the common ones without
    // allocating and fall back to a generic name for the rest.
    match errno {
        Errno::EPIPE => "EPIPE",
        Errno::EBADF => "EBADF",
        Errno::EAGAIN => "EAGAIN",
        Errno::EINTR => "EINTR",
        Errno::EINVAL => "EINVAL",
        Errno::ENOTSOCK => "ENOTSOCK",
        Errno::ENOTCONN => "ENOTCONN",
        Errno::ECONNRESET => "ECONNRESET",
        Errno::ECONNREFUSED => "ECONNREFUSED",
        Errno::ENOENT => "ENOENT",
        Errno::EADDRINUSE => "EADDRINUSE",
        Errno::ENAMETOOLONG => "ENAMETOOLONG",
        Errno::EMFILE => "EMFILE",
        Errno::ENFILE => "ENFILE",
        Errno::ENOBUFS => "ENOBUFS",
        Errno::ENOMEM => "ENOMEM",
        Errno::EMSGSIZE => "EMSGSIZE",
        Errno::ETOOMANYREFS => "ETOOMANYREFS",
        Errno::EPERM => "EPERM",
        Errno::EACCES => "EACCES",
        Errno::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        Errno::EPROTOTYPE => "EPROTOTYPE",
        Errno::EOPNOTSUPP => "EOPNOTSUPP",
        Errno::EDESTADDRREQ => "EDESTADDRREQ",
        Errno::EISCONN => "EISCONN",
        Errno::ENOTDIR => "ENOTDIR",
        Errno::EEXIST => "EEXIST",
        Errno::ENOPROTOOPT => "ENOPROTOOPT",
        Errno::ECONNABORTED => "ECONNABORTED",
        Errno::EAFNOSUPPORT => "EAFNOSUPPORT",
        Errno::EROFS => "EROFS",
        Errno::ELOOP => "ELOOP",
        Errno::ENOSPC => "ENOSPC",
        Errno::ENOSYS => "ENOSYS",
        Errno::EFBIG => "EFBIG",
        _ => "EUNKNOWN",
    }
}

/// What an errno means for the caller, in a few words.
fn hint(errno: Errno, syscall: &str) -> &'static str {
    match errno {
        Errno::EPIPE => "the peer closed the socket",
        Errno::ECONNRESET => "the peer closed the connection",
        Errno::EBADF => "an fd is not open: was it closed already?",
        Errno::EAGAIN if syscall == "recvmsg" => {
            "no message is waiting on this non-blocking socket: try again when it is readable"
        }
        Errno::EAGAIN => "the socket buffer is full: try again when the socket is writable",
        Errno::ENOTSOCK => "the fd is not a socket",
        Errno::ENOTCONN => "the socket is not connected",
        Errno::ECONNREFUSED => "nobody is listening on that path",
        Errno::ENOENT if syscall == "bind" => {
            "the directory of the socket path does not exist: create it first"
        }
        Errno::ENOTDIR if syscall == "bind" => {
            "a component of the socket path's directory is not a directory: check the path"
        }
        Errno::ENOENT => "no socket exists at that path",
        Errno::EADDRINUSE => "the address is already in use",
        Errno::ENAMETOOLONG => "the socket path is longer than sun_path allows",
        Errno::EMFILE => "the process has too many open fds: close some or raise RLIMIT_NOFILE",
        Errno::ENFILE => "the system has too many open files",
        Errno::ETOOMANYREFS => "too many fds are in flight for this user: the receiver must take them first",
        // Only macOS: the fds of the message did not all fit in the fd table;
        // XNU closes them all and leaves the data queued.
        Errno::EMSGSIZE if syscall == "recvmsg" => {
            "the fds of the message do not fit in this process's fd table (they were closed): \
             close some fds or raise RLIMIT_NOFILE"
        }
        Errno::EMSGSIZE => "the message is too large for this socket",
        Errno::ENOBUFS | Errno::ENOMEM => "the kernel is out of buffer memory",
        Errno::EINVAL if syscall == "sendmsg" => {
            "the kernel refused the message: one of the fds cannot be passed (e.g. io_uring)"
        }
        Errno::EPERM if syscall == "sendmsg" => "the receiving socket refuses fds (SO_PASSRIGHTS)",
        Errno::EACCES => "permission denied",
        Errno::EDESTADDRREQ => "the datagram socket has no peer: connect it first",
        Errno::EPROTONOSUPPORT => "the socket type is not supported on this platform",
        _ => "operating system error",
    }
}
