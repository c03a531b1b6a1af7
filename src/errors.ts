/**
 * Errors thrown by fdpass look like Node's own: an `Error` (or `TypeError` /
 * `RangeError` for bad arguments) with a `code`, and for operating-system
 * errors an `errno` (negative, as Node reports it) and the `syscall`.
 */
export { describe, makeError } from './internal/make-error'

/**
 * An error thrown or rejected by fdpass. Its `code` is an operating-system
 * error name (`'EPIPE'`, `'ECONNRESET'`, `'EAGAIN'`, ...) or one of:
 *
 * - `ERR_INVALID_ARG_TYPE` (`TypeError`), `ERR_INVALID_ARG_VALUE`
 *   (`TypeError`), `ERR_OUT_OF_RANGE` (`RangeError`): a bad argument,
 *   before any syscall.
 * - `ERR_TOO_MANY_FDS`: more than 253 fds in one send.
 * - `ERR_EMPTY_DATA`: fds with no data (except on a framed stream), or an
 *   empty seqpacket message.
 * - `ERR_NOT_UNIX_SOCKET`: the socket is not `AF_UNIX`.
 * - `ERR_FDS_TRUNCATED`: more fds than `maxFds` arrived, or the kernel
 *   truncated them; all were closed.
 * - `ERR_MESSAGE_TRUNCATED`: a datagram or seqpacket message exceeded
 *   `maxBytes`; its fds were closed.
 * - `ERR_SOCKET_CLOSED`: the socket or server is closed (by `close()`, or by
 *   fdpass at the end of the stream or after an error it cannot survive).
 * - `ERR_SOCKET_NOT_LISTENING`: `FdServer.from` was given a socket that
 *   does not listen (a datagram socket, or any socket on which
 *   `listen()` was not called); the fd was left open.
 * - `ERR_FDPASS_PROTOCOL`: a framed peer broke the wire format.
 * - `ABORT_ERR` (an `AbortError`): the `signal` of a receive or accept aborted.
 * - `ERR_ILLEGAL_CONSTRUCTOR`: `new FdSocket()`, `new SyncSocket()` or `new
 *   FdServer()`: use their static methods, `connect()` or `listen()`.
 * - `ERR_FDPASS_TOO_MANY_QUEUED_FDS`: an `FdStream`'s peer sent more fds
 *   than `maxQueuedFds` before they were taken; the stream was destroyed.
 * - `ERR_FDPASS_UNSUPPORTED`: an abstract socket name given to the stream
 *   face outside Linux.
 * - `ERR_SOCKET_CONNECTED`: `connect()` on an `FdStream` that is connected
 *   or connecting.
 * - `ERR_SERVER_ALREADY_LISTEN`, `ERR_SERVER_NOT_RUNNING`: `listen()` twice on
 *   an `FdStreamServer`, `close(callback)` on one that does not listen.
 * - `ERR_FDPASS_NO_BINARY`: no native binary could be loaded (thrown by
 *   `require('fdpass')` or `import`).
 * - `ERR_FDPASS_RUNTIME`: the JavaScript runtime refused a native call (out
 *   of memory, or the environment is shutting down).
 * - `ERR_FDPASS_TOO_MANY_SOCKETS`: one thread has about a million event-loop
 *   sockets open.
 * - `ERR_FDPASS_INTERNAL`: a native call got arguments fdpass's JavaScript
 *   never makes (a mismatched build: reinstall fdpass).
 */
export interface FdpassError extends Error {
  /** `'EPIPE'`, `'EBADF'`, `'EAGAIN'`, ... or one of fdpass's own codes listed above. */
  code: string
  /** The negated errno of an operating-system error, as in Node (`-32` for EPIPE). */
  errno?: number
  /** The syscall that failed, e.g. `'sendmsg'`. */
  syscall?: string
}
