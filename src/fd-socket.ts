/**
 * `FdSocket`: an event-loop socket that sends and receives messages with fds
 * attached, without blocking Node and without a thread per socket. Its
 * plumbing lives in internal/: the send path (socket-send.ts), the receive
 * side (receiver.ts), the native object (native-socket.ts).
 */
import { makeError, type FdpassError } from './errors'
import type { FdLike } from './fd-like'
import { Ev } from './internal/native-constants'
import { endsConnection, isPerMessage, nameSocket } from './internal/error-policy'
import { closeQuietly, closeUnreadOnCollect } from './internal/fd-release'
import { native } from './internal/native'
import { openNativeSocket, type NativeSocketHandle } from './internal/native-socket'
import { Receiver } from './internal/receiver'
import { assertEventLoopSockets } from './internal/runtime'
import { ensureSharedBuffers } from './internal/shared-buffers'
import { DEFAULT_SOCKET_MAX_BYTES } from './internal/native-constants'
import { receiveManyMax, resolveOptions, type ResolvedOptions } from './internal/socket-options'
import { PendingSends, sendMessage } from './internal/socket-send'
import { kAdopt } from './internal/symbols'
import { validateFd, validateSocketType } from './internal/validate'
import { closedError } from './internal/waiters'
import type { SocketType } from './raw'
import type { FdMessage, PeerCredentials, ReceiveManyOptions, ReceiveOptions, SocketOptions } from './socket-types'

export type { FdMessage, PeerCredentials, ReceiveManyOptions, ReceiveOptions, SocketOptions }
export { DEFAULT_SOCKET_MAX_BYTES }

/**
 * A Unix domain socket on Node's event loop that sends and receives messages
 * with fds attached. Make one with {@link FdSocket.pair}, {@link FdSocket.from},
 * `connect()`, or from `FdServer.accept()`.
 *
 * Each `send` is one message; `receive()` and async iteration give each
 * message exactly its own fds. Received fds belong to you: close them.
 * Every fd fdpass creates or receives is close-on-exec.
 *
 * On Bun, which cannot watch an fd from an addon (no libuv `uv_poll`), making
 * one (`pair`, `from`, `connect`, `listen`, `bind`) throws
 * `ERR_FDPASS_UNSUPPORTED_RUNTIME` before any fd is made: use the raw API or
 * `SyncSocket` there.
 */
export class FdSocket implements AsyncIterable<FdMessage> {
  /** The socket type. */
  readonly type: SocketType
  readonly #native: NativeSocketHandle
  /** The native socket's id, which the lean per-message calls take (see internal/lean.ts). */
  readonly #id: number
  readonly #framing: boolean
  readonly #fd: number
  readonly #receiver: Receiver
  readonly #sends = new PendingSends()
  /** Why fdpass destroyed the socket (see #destroy); undefined while it is usable. */
  #destroyedBy: string | undefined
  #closed = false
  #onClose: (() => void) | undefined
  #whenClosed: Promise<void> | undefined
  #resolveClosed: (() => void) | undefined
  // The native side holds the callback only weakly while the socket is idle
  // (so that an idle, unreachable socket can be collected): this field keeps
  // it alive for as long as the socket object is.
  readonly #callback: (kind: number, a: unknown, b: unknown) => void

  /** @internal Use {@link FdSocket.pair}, {@link FdSocket.from} or `connect()`. */
  constructor(token: typeof kAdopt, fd: number, type: SocketType, options: ResolvedOptions, onClose?: () => void) {
    if (token !== kAdopt) {
      throw makeError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Use FdSocket.pair(), FdSocket.from() or connect()')
    }
    this.type = type
    this.#framing = options.framing
    this.#fd = fd
    this.#onClose = onClose
    const buffers = ensureSharedBuffers()
    this.#callback = (kind: number, a: unknown, b: unknown) => this.#onEvent(kind, a, b)
    this.#native = openNativeSocket(fd, type, options, this.#callback, buffers)
    this.#id = this.#native.id
    this.#receiver = new Receiver(this.#native, options)
    closeUnreadOnCollect.register(this, this.#receiver.messages, this)
  }

  /**
   * A connected pair of sockets in this process (`socketpair(2)`), e.g. to
   * hand one end to a child process (`FdSocket.from(3)` there). Default
   * `'stream'`, framed.
   */
  static pair(type?: SocketType, options?: SocketOptions): [FdSocket, FdSocket] {
    assertEventLoopSockets('FdSocket.pair')
    const kind = validateSocketType(type)
    const resolved = resolveOptions(kind, options)
    const [a, b] = native.socketPair(kind) as [number, number]
    // The constructor owns the fd it is given, on failure too: close only
    // what no constructor has been given.
    let first: FdSocket
    try {
      first = new FdSocket(kAdopt, a, kind, resolved)
    } catch (err) {
      closeQuietly([b])
      throw err
    }
    try {
      return [first, new FdSocket(kAdopt, b, kind, resolved)]
    } catch (err) {
      first.close()
      throw err
    }
  }

  /**
   * Adopts a connected `AF_UNIX` socket, e.g. fd 3 handed down by a parent,
   * and takes ownership of it: `close()` closes it. Its blocking mode is
   * left as it is (other processes may hold it, and O_NONBLOCK is shared):
   * fdpass's own calls are non-blocking per call (`MSG_DONTWAIT`).
   * Throws `ERR_NOT_UNIX_SOCKET` or `ENOTSOCK` for anything else.
   */
  static from(fd: number, options?: SocketOptions): FdSocket {
    assertEventLoopSockets('FdSocket.from')
    validateFd(fd, 'fd')
    const type = native.unixSocketType(fd) as SocketType
    return new FdSocket(kAdopt, fd, type, resolveOptions(type, options))
  }

  /** @internal Wraps an fd fdpass created (connect, accept). */
  static [kAdopt](fd: number, type: SocketType, options: ResolvedOptions, onClose?: () => void): FdSocket {
    return new FdSocket(kAdopt, fd, type, options, onClose)
  }

  /** The socket's fd (still owned by this object); -1 once the socket is closed. */
  get fd(): number {
    return this.closed ? -1 : this.#fd
  }

  /**
   * Whether the socket is closed: by `close()`, or by fdpass at the end of
   * the stream or after an error the connection cannot survive (`EPIPE`,
   * `ECONNRESET`, `ECONNREFUSED`, `ERR_FDPASS_PROTOCOL`...), as an error
   * destroys a `net.Socket`. Messages that arrived intact before it can
   * still be received; call `close()` to release them.
   */
  get closed(): boolean {
    return this.#closed || this.#destroyedBy !== undefined
  }

  /**
   * Bytes of sends that the kernel has not taken yet (like `writableLength`
   * of a Node stream). Each pending `send()` holds its data and duplicates of
   * its fds until then; await your sends, or watch this, to bound it.
   */
  get writableLength(): number {
    return this.#closed ? 0 : this.#native.writableLength
  }

  /**
   * Sends one message with `fds` attached. Resolves when the kernel has taken
   * the whole message. With a full socket buffer, messages queue in order —
   * data and fds together — and go out when the socket is writable; fdpass
   * holds duplicates of the queued fds, so you may close yours at once.
   *
   * `fds` may hold fd numbers, `{ fd }` objects, `FileHandle`s, `net.Socket`s,
   * `net.Server`s and `dgram.Socket`s (at most 253).
   */
  send(data: Uint8Array | string, fds?: readonly FdLike[]): Promise<void> {
    if (this.#closed) return Promise.reject(closedError('send: the socket is closed'))
    if (this.#destroyedBy !== undefined) return Promise.reject(closedError(`send: ${this.#destroyedBy}`))
    try {
      if (sendMessage(this.#id, data, fds, this.type, this.#framing)) return Promise.resolve()
    } catch (err) {
      if (endsConnection(err)) this.#destroy(err, `the socket was closed after an error (${err.code})`, true)
      return Promise.reject(err)
    }
    return this.#sends.add()
  }

  /**
   * Receives the next message. Rejects with `ERR_SOCKET_CLOSED` once the peer
   * has closed the connection (end of stream) or after `close()`.
   */
  receive(options?: ReceiveOptions): Promise<FdMessage> {
    return this.#receiver.next(false, options?.signal) as Promise<FdMessage>
  }

  /**
   * Receives every message available now, up to `max` (default 64): those
   * read ahead, then what one read of the socket brings. When there is none,
   * waits, and takes the messages that arrive in one go (at most
   * `readAhead` + 1), before any `receive()` made after it. Resolves with at
   * least one message, in order, each with exactly its own fds. For
   * consumers of a stream of messages: one promise per batch instead of one
   * per message.
   *
   * Rejects as `receive()` does when no message comes before the end of
   * stream, `close()` or an error; an error that follows some messages is
   * reported by the next call, after those messages.
   */
  receiveMany(options?: ReceiveManyOptions): Promise<FdMessage[]> {
    let max: number
    try {
      max = receiveManyMax(options)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#receiver.many(max, options?.signal)
  }

  /** Iterates over incoming messages; ends cleanly at end of stream or close. */
  [Symbol.asyncIterator](): AsyncIterator<FdMessage> {
    return this.#receiver.iterator()
  }

  /** The peer's pid, uid and gid as of connect time. See README on pid reuse. */
  peerCredentials(): PeerCredentials {
    if (this.closed) throw closedError('peerCredentials: the socket is closed')
    return this.#native.peerCredentials()
  }

  /** Lets pending receives and sends keep the process alive (the default). */
  ref(): this {
    if (!this.#closed) this.#native.setRef(true)
    return this
  }

  /** Lets the process exit even while receives or sends are pending. */
  unref(): this {
    if (!this.#closed) this.#native.setRef(false)
    return this
  }

  /**
   * Closes the socket. Pending receives and sends reject with
   * `ERR_SOCKET_CLOSED`; fds of messages read ahead but not taken, and the
   * duplicates held for queued sends, are closed. The socket's fd is closed
   * before this returns; sends still queued are dropped, not flushed (await
   * them first to deliver them).
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#native.close()
    closeUnreadOnCollect.unregister(this)
    const error = closedError('the socket was closed')
    this.#receiver.close(error)
    this.#sends.rejectAll(error)
    this.#onClose?.()
    this.#resolveClosed?.()
  }

  /**
   * Resolves once the socket is closed (`closed` turns true): by `close()`,
   * or by fdpass at the end of the stream or after an error the connection
   * cannot survive. By then its fd is closed and pending sends and waiting
   * receives are settled. It never rejects, and resolves at once when the
   * socket is closed already: await it instead of polling `closed`, as
   * Node users wait for a `net.Socket`'s `'close'` event.
   *
   * @example
   * await socket.whenClosed() // the peer hung up, or someone called close()
   */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.#whenClosed ??= new Promise<void>((resolve) => {
      this.#resolveClosed = resolve
    })
    return this.#whenClosed
  }

  /** Same as {@link FdSocket.close}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.close()
  }

  #onEvent(kind: number, a: unknown, b: unknown): void {
    const receiver = this.#receiver
    switch (kind) {
      case Ev.Published:
        receiver.onPublished(a as number)
        break
      case Ev.Messages:
        receiver.onMessages(a as Buffer, b as Int32Array)
        break
      case Ev.End:
        receiver.end()
        this.#destroy(closedError('send: the peer closed the connection'), 'the peer closed the connection')
        break
      case Ev.Error:
        this.#fail(a as FdpassError)
        break
      case Ev.Written:
        this.#sends.written(a as number)
        break
      case Ev.WriteError:
        if (endsConnection(a)) {
          // The read events of this delivery come after this one, through
          // the shared buffers: read the socket (see #destroy) only once
          // they are handed over, and before anyone learns of the error.
          const failed = this.#sends.take(b as number)
          queueMicrotask(() => {
            for (const pending of failed) pending.reject(a)
            this.#destroy(a, `the socket was closed after an error (${a.code})`, true)
          })
        } else for (const pending of this.#sends.take(b as number)) pending.reject(a as Error)
        break
    }
    if (!receiver.reading) receiver.updateReading()
  }

  /**
   * The one rule for a socket after the end of the stream or an error the
   * connection cannot survive, as Node's `net.Socket` is destroyed by one:
   * the socket closes (`closed` is true, `fd` -1) through the same native
   * close as `close()`; messages that arrived intact before stay
   * receivable, then receives reject with `ERR_SOCKET_CLOSED`; pending
   * sends reject with `error`, later ones with `ERR_SOCKET_CLOSED` saying
   * `reason`. `close()` still releases what is queued.
   */
  #destroy(error: Error, reason: string, keepUnread = false): void {
    if (this.#closed || this.#destroyedBy !== undefined) {
      this.#sends.rejectAll(error)
      return
    }
    this.#destroyedBy = reason
    // A send found the peer gone: take what it sent before it went.
    if (keepUnread) this.#receiver.takeUnread()
    this.#receiver.destroyed(reason)
    this.#native.close()
    this.#sends.rejectAll(error)
    this.#resolveClosed?.()
  }

  /** A receive error: per message on datagram types, fatal on a stream. */
  #fail(error: FdpassError): void {
    // Met while taking the last messages of a socket a send error destroyed:
    // that error was reported already.
    if (this.#destroyedBy !== undefined) return
    nameSocket(error, this.type, this.#framing)
    this.#receiver.pushError(error)
    if (isPerMessage(error, this.type)) return
    // The stream cannot be trusted past this point: close it. Messages that
    // arrived intact before the error stay receivable.
    this.#destroy(error, `the socket was closed after an error (${error.code})`)
  }
}
