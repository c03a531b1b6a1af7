/**
 * `FdStream`, the stream face for byte-stream protocols (D-Bus, Wayland, X11). Its socket's
 * reads, sends and events are in stream-socket.ts; the fds of writes on their way, in write-chunks.ts.
 */
import { Duplex } from 'node:stream'

import { makeError, type FdpassError } from '../errors'
import { assertEventLoopSockets } from '../internal/runtime'
import { validateFd } from '../internal/validate'
import { closedError } from '../internal/waiters'
import type { PeerCredentials } from '../socket-types'
import { socketPath } from './address'
import { alreadyConnected, checkStreamSocket, connectStreamSocket, Construction } from './connect-socket'
import { closeQuietly } from '../internal/fd-release'
import { fdCount } from './fd-queue'
import {
  DEFAULT_STREAM_MAX_QUEUED_FDS,
  kAdopt,
  resolveStreamOptions,
  type FdStreamChunk,
  type FdStreamOptions,
} from './options'
import { StreamSocket } from './stream-socket'
import { Held, resolveChunk, withChunkCallback, type ChunkFds, type WriteCallback } from './write-chunks'

export { DEFAULT_STREAM_MAX_QUEUED_FDS, kAdopt, type FdStreamChunk, type FdStreamOptions }

const dropped = new FinalizationRegistry<Held>((held) => held.closeAll())

/**
 * A `stream.Duplex` over a connected Unix stream socket that carries fds.
 * Make one with `createConnection(path)`, {@link FdStream.from} (an fd you
 * hold), `new FdStream().connect(path)`, or take it from an
 * `FdStreamServer`'s `'connection'` event.
 *
 * Bytes are read as Buffers, unframed: the stream is the peer's byte stream,
 * as C's `read` sees it. Fds that arrive wait in a queue, in arrival order,
 * until {@link FdStream.takeFds} takes them: an fd is queued no later than
 * the byte it was sent with is readable (often with the chunk before it, as
 * the kernel may join them), so a protocol that says "this message carries N
 * fds" takes N once it has read that message. Fds nobody takes are closed
 * when the stream is destroyed; more than `maxQueuedFds` waiting destroys it
 * with `ERR_FDPASS_TOO_MANY_QUEUED_FDS`.
 *
 * `end()` half-closes (`shutdown(SHUT_WR)`) once every write is out; the
 * peer's end of its side emits `'end'`. Errors carry `code`, `errno` and
 * `syscall`, as `net.Socket`'s do. Every fd fdpass receives is close-on-exec.
 */
export class FdStream extends Duplex {
  #socket: StreamSocket | undefined
  readonly #held = new Held()
  readonly #queue = this.#held.queue
  readonly #maxQueuedFds: number
  readonly #chunkFds = new WeakMap<Buffer, ChunkFds>()
  /** The construction Node waits for before reads, writes and destroy: over once connected. */
  readonly #construction = new Construction()
  #connecting = false
  #refed = true

  /**
   * An unconnected stream: call {@link FdStream.connect}. Writes made before
   * it connects wait and go out in order once it has.
   */
  constructor(options?: FdStreamOptions) {
    const { duplex, maxQueuedFds } = resolveStreamOptions(options)
    super(duplex)
    this.#maxQueuedFds = maxQueuedFds
  }

  /**
   * Wraps a connected `AF_UNIX` stream socket, e.g. fd 3 handed down by a
   * parent, and takes ownership of it: destroying the stream closes it. Its
   * blocking mode is left as it is (every call is non-blocking per call).
   * Throws before taking it (the fd stays yours) when it is not a connected
   * Unix stream socket.
   */
  static override from(fd: number, options?: FdStreamOptions): FdStream {
    const stream = new FdStream(options)
    stream.adoptFd(fd)
    return stream
  }

  /**
   * @internal Takes `fd`, a connected Unix stream socket, as this stream's
   * socket (see {@link FdStream.from}); throws before taking it otherwise.
   */
  protected adoptFd(fd: number): void {
    assertEventLoopSockets('FdStream.from')
    validateFd(fd, 'fd')
    if (this.#socket !== undefined || this.#connecting) throw alreadyConnected()
    checkStreamSocket(fd)
    this.#attach(fd)
  }

  /** @internal Wraps an fd fdpass made (accept): `this` is FdStream or a subclass. */
  static [kAdopt](fd: number, options: FdStreamOptions | undefined): FdStream {
    const stream = new this(options)
    stream.#attach(fd)
    return stream
  }

  /**
   * Connects to the stream socket at `path` (a leading `'\0'` or `'@'` names
   * a Linux abstract socket); emits `'connect'` (and calls `listener`), or
   * `'error'` with `ENOENT`, `ECONNREFUSED`, `ENAMETOOLONG`... (the error's
   * `address` names the path).
   */
  connect(path: string, listener?: () => void): this {
    assertEventLoopSockets('FdStream.connect')
    if (this.#socket !== undefined || this.#connecting) throw alreadyConnected()
    if (this.destroyed) throw closedError('connect: the stream is destroyed')
    const address = socketPath(path)
    if (listener !== undefined) {
      if (typeof listener !== 'function') {
        throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "listener" argument must be a function')
      }
      this.once('connect', listener)
    }
    this.#connecting = true
    void this.#connect(address, path)
    return this
  }

  async #connect(address: string, shown: string): Promise<void> {
    let fd: number | undefined
    try {
      fd = await connectStreamSocket(address, () => this.destroyed)
    } catch (err) {
      ;(err as FdpassError & { address?: string }).address = shown
      this.#connected(err as Error)
      return
    }
    if (fd === undefined) {
      this.#connected()
      return
    }
    this.#attach(fd)
    // A Unix connect usually completes within connect(): the events come
    // after the caller has had a chance to listen, as net's do, and the
    // stream is `connecting` until then.
    this.#connecting = true
    process.nextTick(() => {
      this.#connecting = false
      if (this.destroyed) return
      this.emitConnect()
      this.emit('ready')
    })
  }

  /**
   * Ends the construction Node waits for (writes, reads and destroy wait
   * until it is over): with `error`, the stream is destroyed with it.
   */
  #connected(error?: Error): void {
    this.#connecting = false
    this.#construction.end(error)
  }

  /**
   * Destroys the stream (see `stream.Duplex#destroy`): closes the socket and
   * every queued fd; writes the kernel has not taken are dropped.
   */
  override destroy(error?: Error): this {
    super.destroy(error)
    // Never connected, nor connecting: Node waits for the construction to
    // end before it destroys; end it.
    if (!this.#connecting && this.#socket === undefined) this.#connected()
    return this
  }

  /** @internal Emits `'connect'`; the `usocket` face emits its own event (see src/usocket.ts). */
  protected emitConnect(): void {
    this.emit('connect')
  }

  /** Makes the native socket for a connected `fd`, which this stream owns from here on. */
  #attach(fd: number): void {
    this.#socket = new StreamSocket(fd, this, this.#queue, this.#maxQueuedFds)
    if (!this.#refed) this.#socket.setRef(false)
    dropped.register(this, this.#held, this)
    this.#connected()
    this.#socket.updateReading()
  }

  /** The socket's fd (still owned by the stream); -1 before it connects and once it is destroyed. */
  get fd(): number {
    return this.destroyed ? -1 : (this.#socket?.fd ?? -1)
  }

  /** Whether a `connect()` is under way. */
  get connecting(): boolean {
    return this.#connecting
  }

  /** Whether the stream has no socket yet (not connected), as `net.Socket#pending`. */
  get pending(): boolean {
    return this.#socket === undefined
  }

  /** How many received fds wait in the queue for {@link FdStream.takeFds}. */
  get queuedFds(): number {
    return this.#queue.length
  }

  /**
   * Takes up to `count` fds from the front of the queue (default: all), in
   * the order they arrived. They are yours: close them. Fewer than `count`
   * means fewer arrived: the peer sent fewer than its protocol announced.
   */
  takeFds(count?: number): number[] {
    const n = count === undefined ? this.#queue.length : fdCount(count, 'count')
    const fds = this.#queue.take(n)
    if (fds.length > 0) this.#socket?.updateReading()
    return fds
  }

  /** Takes every queued fd, in arrival order (same as `takeFds()`). */
  readFds(): number[] {
    return this.takeFds()
  }

  /**
   * Writes bytes, or `{ data, fds }`: the fds go with the first byte of
   * `data`, in one `sendmsg`. Returns false once the writable buffer is
   * past its high-water mark: wait for `'drain'`. Bad fds or an empty `data`
   * with fds throw before anything is written.
   */
  override write(
    chunk: Uint8Array | string | FdStreamChunk,
    encoding?: BufferEncoding | WriteCallback,
    callback?: WriteCallback,
  ): boolean {
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined]
    if (typeof chunk === 'string' || chunk instanceof Uint8Array || chunk === null || typeof chunk !== 'object') {
      return encoding === undefined ? super.write(chunk, callback) : super.write(chunk, encoding, callback)
    }
    const { data, entry } = resolveChunk(chunk)
    if (entry === undefined) return super.write(data, callback)
    this.#chunkFds.set(data, entry)
    // A write after end() or destroy() fails without being queued.
    const refused = this.writableEnded || this.destroyed
    const result = super.write(data, callback)
    // Still here: the write waits behind others (or the connect). The
    // caller may close its fds now; hold duplicates until they go out.
    if (this.#chunkFds.get(data) === entry && !refused && !this.destroyed) this.#held.duplicate(entry)
    return result
  }

  /** Ends the writable side (after `chunk`, which may carry fds): see {@link FdStream.write}. */
  override end(
    chunk?: Uint8Array | string | FdStreamChunk | (() => void),
    encoding?: BufferEncoding | (() => void),
    callback?: () => void,
  ): this {
    if (typeof chunk === 'function') return super.end(chunk)
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined]
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding)
    return super.end(callback)
  }

  /** Lets pending reads and writes keep the process alive (the default). */
  ref(): this {
    this.#refed = true
    this.#socket?.setRef(true)
    return this
  }

  /** Lets the process exit even while reads or writes are pending. */
  unref(): this {
    this.#refed = false
    this.#socket?.setRef(false)
    return this
  }

  /** Does nothing: Unix sockets have no Nagle delay. For code written for `net.Socket`. */
  setNoDelay(_noDelay?: boolean): this {
    return this
  }

  /** Does nothing: Unix sockets have no keep-alive. For code written for `net.Socket`. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this
  }

  /** The peer's pid, uid and gid as of connect time (see `FdSocket#peerCredentials`). */
  peerCredentials(): PeerCredentials {
    if (this.#socket === undefined || this.destroyed) throw closedError('peerCredentials: the stream is not connected')
    return this.#socket.peerCredentials()
  }

  /** @internal */
  override _construct(callback: (error?: Error | null) => void): void {
    this.#construction.ask(callback)
  }

  /** @internal */
  override _read(): void {
    this.#socket?.read()
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    const entry = this.#chunkFds.get(chunk)
    if (entry !== undefined) {
      this.#chunkFds.delete(chunk)
      this.#held.taken(entry)
    }
    if (entry?.error !== undefined) {
      callback(entry.error)
      return
    }
    const done = withChunkCallback(entry, callback)
    const fds = entry?.fds ?? []
    try {
      if (chunk.length === 0 && fds.length === 0) done()
      else if (this.#socket === undefined) done(closedError('write: the stream is not connected'))
      else this.#socket.send(chunk, fds, done)
    } catch (err) {
      done(err as Error)
    } finally {
      // The kernel, or the native queue's own duplicates, hold them now.
      if (entry?.owned) closeQuietly(fds)
    }
  }

  /** @internal Half-closes once every write is out. */
  override _final(callback: (error?: Error | null) => void): void {
    try {
      if (this.#socket !== undefined && !this.destroyed) this.#socket.shutdownWrite()
    } catch (err) {
      callback(err as Error)
      return
    }
    callback()
  }

  /** @internal Closes the socket and every fd still queued. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#connecting = false
    this.#construction.forget()
    if (this.#socket !== undefined) {
      this.#socket.close()
      dropped.unregister(this)
    }
    // The queue, and the duplicates of writes that never reached the socket.
    this.#held.closeAll()
    callback(error)
  }
}
