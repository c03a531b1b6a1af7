/**
 * `FdSocket`: an event-loop socket that sends and receives messages with fds
 * attached, without blocking Node and without a thread per socket.
 */
import { makeError, type FdpassError } from './errors'
import { toFd, type FdLike } from './fd-like'
import { native } from './native'
import { copyToScratch, enterStaging, isFdNumber, lean, leaveStaging, scratchInts, SMALL_COPY, stagedToScratch } from './lean'
import { beginBatch, ensureSharedBuffers, nextMessage } from './shared-buffers'
import { abortError, closedError, iterate, settle, wait, type Waiter } from './waiters'
import { Queue } from './queue'
import { release } from './held-fds'
import { cancelStop, deferStop } from './deferred-stops'
import { validateSocketType, type SocketType } from './raw'
import { assertEventLoopSockets } from './runtime'
import { emptyDataError, integerOption, optionsObject, toBytes, validateFd } from './validate'
import { DEFAULT_SOCKET_MAX_BYTES as NATIVE_DEFAULT_SOCKET_MAX_BYTES, Ev, MAX_FDS_PER_MESSAGE } from './internal/native-constants'

/** A message and the fds that came with it. The fds are yours to close. */
export interface FdMessage {
  /** The payload. */
  data: Buffer
  /** The fds that came with this message, in the order they were sent. */
  fds: number[]
}

/** Options of a socket. */
export interface SocketOptions {
  /**
   * Frame messages on a stream socket (default `true` for `'stream'`): each
   * `send` arrives as one message with exactly its own fds, whatever the
   * kernel merges or splits. Turn it off to talk to peers that do not speak
   * fdpass framing (C, Python, Go): each `recvmsg` is then delivered as it
   * came. Seqpacket and dgram sockets keep message boundaries natively and
   * are never framed.
   */
  framing?: boolean
  /**
   * The largest message accepted, in bytes (1 to 2^31 - 1, default 4194304, 4 MiB:
   * {@link DEFAULT_SOCKET_MAX_BYTES}). Memory grows with what arrives, not
   * with this limit. A framed peer announcing more is a protocol error that
   * closes the connection; a longer datagram is refused with
   * `ERR_MESSAGE_TRUNCATED`.
   */
  maxBytes?: number
  /** The most fds accepted per message (0 to 253, default 253). */
  maxFds?: number
  /**
   * How many messages may be read ahead of `receive()` calls (0 to 4096, default 16).
   * Beyond that the kernel's socket buffer holds them, so a peer flooding
   * fds cannot exhaust this process's fd table or memory.
   */
  readAhead?: number
  /**
   * The most received fds held for messages nobody has taken yet, and for a
   * framed message not complete yet (0 to 2^20, default 1024): reading ahead
   * stops there. A single read may pass it by at most one message's fds.
   */
  maxQueuedFds?: number
}

/** Options of {@link FdSocket.receive} and {@link FdServer.accept}. */
export interface ReceiveOptions {
  /** Aborts the wait; the promise rejects with an `AbortError`. */
  signal?: AbortSignal
}

/** Options of {@link FdSocket.receiveMany}. */
export interface ReceiveManyOptions extends ReceiveOptions {
  /** The most messages to take (1 to 4096, default 64). */
  max?: number
}

/** Credentials of the peer process, as the kernel recorded them at connect time. */
export interface PeerCredentials {
  /**
   * Process id (Linux: at connect time; macOS: the last process to use the
   * peer socket), or `undefined` when the kernel cannot tell (a peer in a PID
   * namespace this process cannot see, or no `LOCAL_PEERPID` on macOS). Can
   * be reused once that process exits: never authorize on it.
   */
  pid: number | undefined
  /** Effective user id: the value to base access decisions on. */
  uid: number
  /** Effective group id. */
  gid: number
}

/** The native object behind a socket (see crates/fdpass-node/src/socket.rs). */
export interface NativeSocketHandle {
  readonly fd: number
  readonly writableLength: number
  readonly id: number
  setReading(room: number, fdRoom: number): void
  setRef(refed: boolean): void
  peerCredentials(): PeerCredentials
  close(): void
}

export { Ev }


interface PendingSend {
  resolve(): void
  reject(error: Error): void
}

/** Resolved options of a socket. */
export interface ResolvedOptions {
  framing: boolean
  maxBytes: number
  maxFds: number
  readAhead: number
  maxQueuedFds: number
}

/**
 * Default `maxBytes` of a socket: 4 MiB. Large enough for the JSON metadata,
 * D-Bus or Wayland messages that travel with fds (the kernel's default
 * socket buffer is about 200 KiB, so this is no limit in practice), small
 * enough that a hostile peer cannot make one connection buffer more than
 * that; the memory held grows only with what has arrived.
 */
export const DEFAULT_SOCKET_MAX_BYTES: number = NATIVE_DEFAULT_SOCKET_MAX_BYTES

const DEFAULT_READ_AHEAD = 16
const DEFAULT_RECEIVE_MANY = 64
const MAX_RECEIVE_MANY = 4096
const DEFAULT_MAX_QUEUED_FDS = 1024

/** Checks socket options. */
export function resolveOptions(type: SocketType, options: SocketOptions | undefined): ResolvedOptions {
  const opts = optionsObject(options, 'options')
  if (opts.framing !== undefined && typeof opts.framing !== 'boolean') {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "framing" option must be of type boolean')
  }
  return {
    framing: type === 'stream' && opts.framing !== false,
    maxBytes: integerOption(opts.maxBytes, 'maxBytes', 1, 2 ** 31 - 1, DEFAULT_SOCKET_MAX_BYTES),
    maxFds: integerOption(opts.maxFds, 'maxFds', 0, MAX_FDS_PER_MESSAGE, MAX_FDS_PER_MESSAGE),
    readAhead: integerOption(opts.readAhead, 'readAhead', 0, 4096, DEFAULT_READ_AHEAD),
    maxQueuedFds: integerOption(opts.maxQueuedFds, 'maxQueuedFds', 0, 2 ** 20, DEFAULT_MAX_QUEUED_FDS),
  }
}

export { abortError, closedError }

/** Closes the fds of messages nobody took. */
function closeQuietly(fds: number[]): void {
  if (fds.length > 0) {
    release(fds)
    try {
      native.closeFds(fds)
    } catch {
      // Already closed by their owner: nothing more to release.
    }
  }
}

/** A message handed to the user's code: its fds are theirs from now on (see src/held-fds.ts). */
function handOver(message: FdMessage): FdMessage {
  if (message.fds.length > 0) release(message.fds)
  return message
}

/**
 * {@link handOver} for a message that settles a waiting receive: its fds stay
 * marked until the microtask queued here, which runs after the rest of this
 * delivery and just before the receiver's own code (queued before the
 * settle, so before its reaction). A worker terminated meanwhile has them
 * closed.
 */
function handOverSoon(message: FdMessage): FdMessage {
  if (message.fds.length > 0) queueMicrotask(() => release(message.fds))
  return message
}

const kAdopt = Symbol('fdpass.adopt')

/**
 * Closes the fds of read-ahead messages of a socket that was garbage-collected
 * without close() (the native side closes the socket itself). The held value
 * is the message queue, which does not refer back to the socket.
 */
const dropped = new FinalizationRegistry<Queue<FdMessage | Error>>((messages) => {
  for (const item of messages.drain()) if (!(item instanceof Error)) closeQuietly(item.fds)
})

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
  /** The native socket's id, which the lean per-message calls take (see src/lean.ts). */
  readonly #id: number
  readonly #options: ResolvedOptions
  readonly #fd: number
  readonly #messages = new Queue<FdMessage | Error>()
  #waiters: Array<Waiter<FdMessage>> = []
  #sends: PendingSend[] = []
  #room = 0
  #fdRoom = 0
  #queuedFds = 0
  #stopPending = false
  /** Why fdpass destroyed the socket (see #destroy); undefined while it is usable. */
  #destroyedBy: string | undefined
  #ended = false
  #closed = false
  #reading = false
  /** Whether receive() reads ahead (see #next). */
  #streaming = false
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
    this.#options = options
    this.#fd = fd
    this.#onClose = onClose
    const buffers = ensureSharedBuffers()
    this.#callback = (kind: number, a: unknown, b: unknown) => this.#onEvent(kind, a, b)
    this.#native = new native.NativeSocket(
      fd,
      type,
      false,
      options.framing,
      options.maxBytes,
      options.maxFds,
      this.#callback,
      buffers,
    ) as NativeSocketHandle
    this.#id = this.#native.id
    dropped.register(this, this.#messages, this)
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
    let bytes: Uint8Array
    let count: number
    try {
      bytes = toBytes(data, 'data')
      const length = bytes.length // before the fds reach the scratch: nothing may run user code after that
      count = resolveFds(fds)
      // A framed message always has its header: an empty one is a message
      // like any other. Unframed, an empty send with fds is refused on every
      // type; without fds it sends an empty datagram, nothing at all on a
      // stream (as net.Socket's write('') does), and is refused on
      // seqpacket, whose peer would read it as the end of the stream.
      if (length === 0 && !this.#options.framing) {
        if (count > 0) throw emptyDataError(this.type, this.type === 'stream')
        if (this.type === 'seqpacket') {
          throw makeError(
            Error,
            'ERR_EMPTY_DATA',
            'an empty message on this seqpacket socket would read as the end of the stream at the peer: send at least one byte',
          )
        }
      }
      scratchInts[0] = this.#id
      if (length > SMALL_COPY) {
        scratchInts[1] = count
        lean.socketSend(bytes)
      } else {
        scratchInts[1] = copyToScratch(bytes)
        scratchInts[2] = count
        lean.socketSendScratch()
      }
      const sentNow = scratchInts[0] === 1
      if (sentNow) return Promise.resolve()
    } catch (err) {
      if (endsConnection(err)) this.#destroy(err, `the socket was closed after an error (${err.code})`, true)
      return Promise.reject(err)
    }
    return new Promise((resolve, reject) => this.#sends.push({ resolve, reject }))
  }

  /**
   * Receives the next message. Rejects with `ERR_SOCKET_CLOSED` once the peer
   * has closed the connection (end of stream) or after `close()`.
   */
  receive(options?: ReceiveOptions): Promise<FdMessage> {
    return this.#next(false, options?.signal) as Promise<FdMessage>
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
      const opts = optionsObject(options, 'options')
      max = integerOption(opts.max, 'max', 1, MAX_RECEIVE_MANY, DEFAULT_RECEIVE_MANY)
    } catch (err) {
      return Promise.reject(err)
    }
    const signal = options?.signal
    if (signal?.aborted) return Promise.reject(abortError(signal))
    const batch: FdMessage[] = []
    this.#takeQueued(batch, max)
    if (batch.length < max && this.#mayReadNow()) {
      const count = this.#readNow(max - batch.length)
      if (count > 0) {
        beginBatch()
        for (let k = 0; k < count; k++) batch.push(handOver(nextMessage()))
      } else if (count < 0) this.#takeQueued(batch, max)
    }
    if (batch.length > 0) return Promise.resolve(batch)
    // An error at the head of the queue, or the end: as receive() reports them.
    if (this.#messages.length > 0 || this.#ended || this.#closed) return this.#next(false, signal) as Promise<never>
    // Wait: the messages handed over in one go, up to max, in order, go to
    // this call before any receive() made after it (see #deliver).
    return wait(this.#waiters, false, signal, () => this.#updateReading(), max) as unknown as Promise<FdMessage[]>
  }

  /** Moves queued messages (not errors) into `batch`, up to `max` in all. */
  #takeQueued(batch: FdMessage[], max: number): void {
    const queue = this.#messages
    while (batch.length < max && queue.length > 0) {
      const item = queue.peek()!
      if (item instanceof Error) break
      queue.shift()
      release(item.fds)
      batch.push(item)
      this.#queuedFds -= item.fds.length
    }
  }

  /** Iterates over incoming messages; ends cleanly at end of stream or close. */
  [Symbol.asyncIterator](): AsyncIterator<FdMessage> {
    return iterate((iterating) => this.#next(iterating, undefined))
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
    dropped.unregister(this)
    const error = closedError('the socket was closed')
    for (const item of this.#messages.drain()) if (!(item instanceof Error)) closeQuietly(item.fds)
    this.#queuedFds = 0
    for (const waiter of this.#waiters.splice(0)) settle(waiter, undefined, error)
    for (const pending of this.#sends.splice(0)) pending.reject(error)
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

  #next(iterating: boolean, signal: AbortSignal | undefined): Promise<FdMessage | undefined> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    if (this.#mayReadNow()) {
      // Try the syscall first: wait on the loop only if nothing is there.
      // Usually one message: one recvmsg, no extra call that would only say
      // EAGAIN (a request-reply peer sends one at a time). While messages
      // stream in faster than they are taken, read ahead instead: one call
      // then serves the next receive()s from the queue. Streaming is when
      // the last read (this one's, or the event loop's) found more than one
      // message.
      const ahead = this.#streaming
      const count = this.#readNow(ahead ? 1 + this.#options.readAhead : 1)
      if (ahead) this.#streaming = count > 1
      // The common case: exactly the one message asked for, handed over
      // without passing through the queue.
      if (count === 1 && this.#messages.length === 0) {
        beginBatch()
        return Promise.resolve(handOver(nextMessage()))
      }
      if (count > 0) this.#deliverPublished(count)
    }
    const item = this.#messages.shift()
    if (item !== undefined) {
      if (item instanceof Error) return Promise.reject(item)
      release(item.fds)
      this.#queuedFds -= item.fds.length
      return Promise.resolve(item)
    }
    if (this.#ended || this.#closed) {
      if (iterating) return Promise.resolve(undefined)
      return Promise.reject(
        closedError(this.#closed ? 'receive: the socket is closed' : 'receive: the peer closed the connection'),
      )
    }
    return wait(this.#waiters, iterating, signal, () => this.#updateReading())
  }

  /**
   * Whether a receive may read the socket itself, now: nothing queued, no
   * end, and nobody waiting ahead of it (they are served first, in order).
   */
  #mayReadNow(): boolean {
    return this.#messages.length === 0 && !this.#ended && !this.#closed && this.#waiters.length === 0
  }

  /**
   * Reads up to `max` messages now (one lean call, see src/lean.ts), within
   * maxQueuedFds plus one message's worth of fds, as the event loop's reads.
   * Returns how many wait in the shared buffers (read them with nextMessage),
   * 0 for none, or -1 when they were delivered as events instead.
   */
  #readNow(max: number): number {
    this.#reading = true
    scratchInts[0] = this.#id
    scratchInts[1] = max
    scratchInts[2] = this.#fdRoomFor(1)
    lean.socketRead()
    this.#reading = false
    return scratchInts[0]!
  }

  /** Fds a read may bring: what maxQueuedFds leaves, and always enough for the waiters. */
  #fdRoomFor(waiters: number): number {
    const { maxQueuedFds, maxFds } = this.#options
    return Math.max(maxQueuedFds - this.#queuedFds, waiters * Math.max(maxFds, 1))
  }

  #updateReading(): void {
    if (this.#closed) return
    const waiters = this.#waiters.length
    const room = waiters > 0 && !this.#ended ? waiters + this.#options.readAhead : 0
    if (room === 0 && this.#room > 0 && !this.#ended) {
      // Nobody waits right now, but a loop over receive() asks again as soon
      // as it has handled this message: stop watching the socket only if
      // nobody has once that code has run (see src/deferred-stops.ts).
      if (!this.#stopPending) {
        this.#stopPending = true
        deferStop(this.#settleStopLater)
      }
      return
    }
    if (this.#stopPending) {
      this.#stopPending = false
      cancelStop(this.#settleStopLater)
    }
    this.#updateReadingNow()
  }

  /** Settles a deferred stop; one function per socket, so that it can be withdrawn. */
  readonly #settleStopLater = (): void => {
    this.#stopPending = false
    this.#updateReadingNow()
  }

  #updateReadingNow(): void {
    if (this.#closed) return
    const waiters = this.#waiters.length
    const room = waiters > 0 && !this.#ended ? waiters + this.#options.readAhead : 0
    const fdRoom = room > 0 ? this.#fdRoomFor(waiters) : 0
    if (room !== this.#room || fdRoom !== this.#fdRoom) {
      this.#room = room
      this.#fdRoom = fdRoom
      this.#native.setReading(room, fdRoom)
    }
  }

  #onEvent(kind: number, a: unknown, b: unknown): void {
    switch (kind) {
      case Ev.Published:
        this.#streaming = (a as number) > 1
        this.#deliverPublished(a as number)
        break
      case Ev.Messages:
        this.#streaming = (b as Int32Array)[0]! > 1
        this.#deliverMessages(a as Buffer, b as Int32Array)
        break
      case Ev.End:
        this.#ended = true
        for (const waiter of this.#waiters.splice(0)) {
          settle(waiter, undefined, closedError('receive: the peer closed the connection'))
        }
        this.#destroy(closedError('send: the peer closed the connection'), 'the peer closed the connection')
        break
      case Ev.Error:
        this.#fail(a as FdpassError)
        break
      case Ev.Written:
        for (const pending of this.#sends.splice(0, a as number)) pending.resolve()
        break
      case Ev.WriteError:
        if (endsConnection(a)) {
          // The read events of this delivery come after this one, through
          // the shared buffers: read the socket (see #destroy) only once
          // they are handed over, and before anyone learns of the error.
          const failed = this.#sends.splice(0, b as number)
          queueMicrotask(() => {
            for (const pending of failed) pending.reject(a)
            this.#destroy(a, `the socket was closed after an error (${a.code})`, true)
          })
        } else for (const pending of this.#sends.splice(0, b as number)) pending.reject(a as Error)
        break
    }
    if (!this.#reading) this.#updateReading()
  }

  #deliverPublished(count: number): void {
    beginBatch()
    this.#deliverBatch(count)
  }

  /** Hands over the `count` messages of the batch begun (see shared-buffers.ts), as one delivery. */
  #deliverBatch(count: number): void {
    for (let k = 0; k < count; k++) this.#deliver(nextMessage())
    // A receiveMany() that got messages in this delivery resolves with them.
    const waiter = this.#waiters[0]
    if (waiter?.many && waiter.many.items.length > 0) settle(this.#waiters.shift()!, undefined, undefined)
  }

  #deliver(message: FdMessage): void {
    if (this.#closed) {
      // Arrived in the batch that was being handed over when close() ran.
      closeQuietly(message.fds)
      return
    }
    const waiter = this.#waiters[0]
    if (waiter?.many) {
      // A receiveMany() takes the rest of this delivery, up to its max.
      waiter.many.items.push(handOverSoon(message))
      if (waiter.many.items.length >= waiter.many.max) settle(this.#waiters.shift()!, undefined, undefined)
    } else if (waiter) settle(this.#waiters.shift()!, handOverSoon(message), undefined)
    else {
      // Still marked as held (see src/held-fds.ts) until a receive() takes it.
      this.#messages.push(message)
      this.#queuedFds += message.fds.length
    }
  }

  /** A batch too large for the shared buffers, handed over as its own Buffer and Int32Array. */
  #deliverMessages(data: Buffer, meta: Int32Array): void {
    beginBatch(data, meta)
    this.#deliverBatch(meta[0] as number)
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
      for (const pending of this.#sends.splice(0)) pending.reject(error)
      return
    }
    this.#destroyedBy = reason
    if (keepUnread && !this.#ended && this.#waiters.length === 0) {
      // A send found the peer gone: what it sent before it went is still in
      // the kernel. Take it, within the read-ahead limits, before closing, so
      // that a reply followed by the peer's exit is not lost.
      const count = this.#readNow(1 + this.#options.readAhead)
      if (count > 0) this.#deliverPublished(count)
    }
    this.#ended = true
    this.#native.close()
    for (const w of this.#waiters.splice(0)) settle(w, undefined, closedError(`receive: ${reason}`))
    for (const pending of this.#sends.splice(0)) pending.reject(error)
    this.#resolveClosed?.()
  }

  /** A receive error: per message on datagram types, fatal on a stream. */
  #fail(error: FdpassError): void {
    // Met while taking the last messages of a socket a send error destroyed:
    // that error was reported already.
    if (this.#destroyedBy !== undefined) return
    nameSocket(error, this.type, this.#options.framing)
    const perMessage =
      this.type !== 'stream' && (error.code === 'ERR_MESSAGE_TRUNCATED' || error.code === 'ERR_FDS_TRUNCATED')
    const waiter = this.#waiters.shift()
    if (waiter) settle(waiter, undefined, error, true)
    else this.#messages.push(error)
    if (perMessage) return
    // The stream cannot be trusted past this point: close it. Messages that
    // arrived intact before the error stay receivable.
    this.#destroy(error, `the socket was closed after an error (${error.code})`)
  }
}


/**
 * Send errors after which the connection is gone: like any receive error on a
 * stream, they destroy the socket. Others (`ETOOMANYREFS`, `ENOBUFS`, bad
 * arguments) concern one message and leave it open.
 */
const CONNECTION_ERRORS = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ENOTCONN'])

function endsConnection(err: unknown): err is FdpassError {
  return err instanceof Error && CONNECTION_ERRORS.has((err as FdpassError).code)
}

/**
 * Says, in a receive error's message, which socket met it and, for a framing
 * error, the option to change when the peer does not speak fdpass framing
 * (the core, which reports it, does not know the socket's type).
 */
function nameSocket(error: FdpassError, type: SocketType, framing: boolean): void {
  if (error.code === 'ERR_MESSAGE_TRUNCATED' || error.code === 'ERR_FDS_TRUNCATED') {
    error.message = `${error.message} (on a ${framing ? 'framed stream' : type} socket)`
  } else if (error.code === 'ERR_FDPASS_PROTOCOL') {
    error.message = `${error.message} (a framed stream socket: if the peer does not speak fdpass framing, as a C, Python or Go peer, set the framing option to false)`
  }
}

/** Puts the fds of `fds` into the lean fd slots; returns how many. */
function resolveFds(fds: readonly FdLike[] | undefined): number {
  if (fds === undefined) return 0
  if (!Array.isArray(fds)) {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "fds" argument must be an array')
  }
  const count = fds.length // read once: a Proxy could answer differently each time
  if (count > MAX_FDS_PER_MESSAGE) {
    throw makeError(
      RangeError,
      'ERR_TOO_MANY_FDS',
      `cannot send ${count} fds in one message: the limit is ${MAX_FDS_PER_MESSAGE} (split them over several messages)`,
    )
  }
  // Staged first: toFd may run user code that sends through the scratch (see enterStaging).
  const staged = enterStaging()
  try {
    for (let i = 0; i < count; i++) {
      const fd: unknown = fds[i]
      // The element's name is built only for the error message.
      staged[i] = isFdNumber(fd) ? (fd as number) : toFd(fd, `fds[${i}]`)
    }
    stagedToScratch(staged, count)
  } finally {
    leaveStaging()
  }
  return count
}

export { kAdopt }
