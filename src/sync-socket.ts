/**
 * `SyncSocket`: the raw, synchronous API on a socket fdpass owns, in the
 * spirit of a Python `socket` object with `send_fds` / `recv_fds`.
 */
import { makeError } from './errors'
import { native } from './internal/native'
import { receiveOn, sendOn } from './internal/raw-io'
import { kAdopt } from './internal/symbols'
import { validateFd, validateSocketType } from './internal/validate'
import { closedError } from './internal/waiters'
import type { RecvFdsOptions, RecvFdsResult, SocketType } from './raw'

/**
 * Closes the fd of a socket garbage-collected without close(), as Node does
 * for a FileHandle: the socket owned it, so nobody else may close it. The held
 * value is the fd number; close() unregisters before closing.
 */
const unclosed = new FinalizationRegistry<number>((fd) => {
  try {
    native.closeFds([fd])
  } catch {
    // Closed behind the socket's back: nothing left to release.
  }
})

/**
 * A Unix domain socket that fdpass owns, with synchronous `send` and
 * `receive`: `sendFds` / `recvFds` as methods.
 *
 * Why own it: `sendFds(fd, ...)` on a bare fd number must check on every call
 * that the number still names an `AF_UNIX` socket (one `getsockopt`), because
 * the number may have been closed and reused by a TCP socket, which would
 * silently drop the fds. A `SyncSocket` checks once, when it takes the fd, and
 * from then on sends make exactly the syscalls C makes. Close it with
 * `close()` (or `using`), not behind its back.
 *
 * Calls block on a blocking socket (fdpass's own sockets are blocking) and
 * throw `EAGAIN` on a non-blocking one, like the fd-number functions. For
 * sockets on Node's event loop, use `FdSocket`.
 *
 * @example
 * const [a, b] = SyncSocket.pair()
 * a.send('x', [fs.openSync('file.txt', 'r')])
 * const { data, fds } = b.receive()
 */
export class SyncSocket implements Disposable {
  /** The socket type. */
  readonly type: SocketType
  #fd: number

  /** @internal Use {@link SyncSocket.pair} or {@link SyncSocket.from}. */
  constructor(token: typeof kAdopt, fd: number, type: SocketType) {
    if (token !== kAdopt) {
      throw makeError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Use SyncSocket.pair() or SyncSocket.from()')
    }
    this.#fd = fd
    this.type = type
    unclosed.register(this, fd, this)
  }

  /**
   * A connected pair (`socketpair(2)`), default `'stream'`; both ends
   * blocking and close-on-exec. Hand one end's `fd` to a child process
   * (`SyncSocket.from(3)` there).
   */
  static pair(type?: SocketType): [SyncSocket, SyncSocket] {
    const kind = validateSocketType(type)
    const [a, b] = native.socketPair(kind) as [number, number]
    return [new SyncSocket(kAdopt, a, kind), new SyncSocket(kAdopt, b, kind)]
  }

  /**
   * Takes ownership of a connected `AF_UNIX` socket, e.g. fd 3 handed down by
   * a parent: `close()` closes it. Checks what it is first and throws
   * `ERR_NOT_UNIX_SOCKET` or `ENOTSOCK` (leaving the fd open) for anything
   * else. The blocking mode is left as it is.
   */
  static from(fd: number): SyncSocket {
    validateFd(fd, 'fd')
    const type = native.unixSocketType(fd) as SocketType
    return new SyncSocket(kAdopt, fd, type)
  }

  /** The socket's fd (still owned by this object); -1 once closed. */
  get fd(): number {
    return this.#fd
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#fd < 0
  }

  /**
   * Sends `data` with `fds` attached (one `sendmsg`, one `SCM_RIGHTS`
   * message) and returns the bytes sent; the same contract as `sendFds`.
   * The kernel takes its own reference to each fd: you may close yours as
   * soon as this returns.
   */
  send(data: Uint8Array | string, fds?: readonly number[]): number {
    if (this.#fd < 0) throw closedError('send: the socket is closed')
    return sendOn(this.#fd, data, fds, false, this.type)
  }

  /**
   * Receives one message (one `recvmsg`) and the fds that came with it; the
   * same contract as `recvFds`. The fds are yours to close.
   */
  receive(options?: RecvFdsOptions): RecvFdsResult {
    if (this.#fd < 0) throw closedError('receive: the socket is closed')
    return receiveOn(this.#fd, options)
  }

  /** Closes the socket (once; later calls do nothing). */
  close(): void {
    const fd = this.#fd
    if (fd < 0) return
    this.#fd = -1
    unclosed.unregister(this)
    native.closeFds([fd])
  }

  /** Same as {@link SyncSocket.close}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.close()
  }
}
