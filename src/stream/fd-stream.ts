/**
 * `FdStream`: a `stream.Duplex` over a connected Unix stream socket whose
 * bytes carry fds out of band, as protocol libraries (D-Bus, Wayland, X11)
 * need them: bytes are read as Buffers, fds wait in a queue that the reader
 * drains explicitly, in arrival order.
 *
 * The path of a write: `write({ data, fds })` resolves the fds at once (and
 * duplicates them if the write has to wait behind others), `_write` hands the
 * bytes and fds to the native socket in one `sendmsg` (the fds go with the
 * first byte), and the write's callback runs when the kernel has taken every
 * byte (`Ev.Written`), which is what makes `write()` return false and
 * `'drain'` come as Node's own sockets do. The path of a read: `_read` asks
 * the native socket to watch for input (`setReading`); each `recvmsg` (up to
 * 64 KiB) comes back as one message of a batch whose fds join the queue and
 * whose bytes are pushed; a full readable buffer stops the reads, so the
 * kernel's buffer, then the peer, wait.
 */
import { Buffer } from 'node:buffer'
import { Duplex } from 'node:stream'

import { makeError, type FdpassError } from '../errors'
import { toFd, type FdLike } from '../fd-like'
import { Ev } from '../internal/constants'
import { openNativeSocket, type NativeSocketHandle } from '../internal/native-socket'
import type { PeerCredentials } from '../socket-types'
import { lean, scratchFds, scratchInts } from '../internal/lean'
import { native } from '../internal/native'
import { assertEventLoopSockets } from '../internal/runtime'
import { beginBatch, ensureSharedBuffers, nextMessage } from '../internal/shared-buffers'
import { integerOption, MAX_FDS_PER_MESSAGE, optionsObject, toBytes, validateFd } from '../internal/validate'
import { closedError } from '../internal/waiters'
import { socketPath } from './address'
import { closeQuietly, fdCount, FdQueue } from './fd-queue'

/**
 * Default {@link FdStreamOptions.maxQueuedFds}: 1024 received fds waiting
 * for `takeFds()`.
 */
export const DEFAULT_STREAM_MAX_QUEUED_FDS = 1024

/** How much one `recvmsg` of a stream asks the kernel for. */
const READ_CHUNK = 64 * 1024
/** How many `recvmsg`s one wake-up of the loop may do while the reader wants more. */
const READ_ROOM = 4

/** Options of an {@link FdStream}. */
export interface FdStreamOptions {
  /**
   * Keep the writable side open after the peer has ended its side (default
   * `false`: the stream ends its own side too, as `net.Socket` does).
   */
  allowHalfOpen?: boolean
  /**
   * The most received fds that may wait in the queue for `takeFds()` (0 to
   * 2^20, default 1024: {@link DEFAULT_STREAM_MAX_QUEUED_FDS}). A peer that
   * sends more than that before the reader takes them destroys the stream
   * with `ERR_FDPASS_TOO_MANY_QUEUED_FDS`, and every queued fd is closed; 0
   * refuses fds altogether. Checked at every read, so a peer cannot fill
   * this process's fd table.
   */
  maxQueuedFds?: number
  /** The readable side's buffer, in bytes (default Node's, 16 KiB). */
  readableHighWaterMark?: number
  /** The writable side's buffer, in bytes (default Node's, 16 KiB): past it, `write()` returns false. */
  writableHighWaterMark?: number
}

/**
 * A chunk of bytes with fds attached, for {@link FdStream.write}. The fds go
 * with the first byte of `data`, which must not be empty when there are fds.
 */
export interface FdStreamChunk {
  /** The bytes; a string is written as UTF-8. */
  data: Uint8Array | string
  /**
   * Fds to attach (at most 253): numbers, `{ fd }` objects, `FileHandle`s,
   * `net` sockets and servers, `dgram` sockets. fdpass sends duplicates when
   * the write has to wait, so they may be closed as soon as `write()` returns.
   */
  fds?: readonly FdLike[]
  /** Called with the chunk once the kernel has taken it (as `usocket` did). */
  callback?: (chunk: FdStreamChunk) => void
}

/** The fds of a chunk on its way to `_write`. */
interface ChunkFds {
  fds: number[]
  /** Duplicates made for a write that waited: closed once sent. */
  owned: boolean
  error?: Error
  chunk?: FdStreamChunk
}

type WriteCallback = (error?: Error | null) => void

/**
 * What a stream holds that must be closed with it: the fds received and not
 * taken, and the duplicates held for writes that wait. Kept apart from the
 * stream, so that a stream collected without being destroyed has them
 * closed (the native side closes the socket itself).
 */
class Held {
  readonly queue = new FdQueue()
  /** The fds of waiting writes, duplicated by fdpass. */
  readonly duplicates = new Set<ChunkFds>()

  closeAll(): void {
    this.queue.closeAll()
    for (const entry of this.duplicates) closeQuietly(entry.fds)
    this.duplicates.clear()
  }
}

const dropped = new FinalizationRegistry<Held>((held) => held.closeAll())

const kAdopt = Symbol('fdpass.stream.adopt')

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
  #native: NativeSocketHandle | undefined
  #id = -1
  #fd = -1
  readonly #held = new Held()
  readonly #queue = this.#held.queue
  readonly #maxQueuedFds: number
  readonly #chunkFds = new WeakMap<Buffer, ChunkFds>()
  #pendingWrites: WriteCallback[] = []
  #constructed: ((error?: Error | null) => void) | undefined
  /** How the construction ended, once it has (see #connected). */
  #construction: { error: Error | undefined } | undefined
  #connecting = false
  #wantRead = false
  #room = 0
  #fdRoom = 0
  #peerEnded = false
  /** Whether a batch is being handed over: a _read then must not read the socket (it would interleave batches). */
  #delivering = false
  #refed = true
  // Held here: the native side keeps the callback only weakly while idle.
  readonly #callback = (kind: number, a: unknown, b: unknown): void => this.#onEvent(kind, a, b)

  /**
   * An unconnected stream: call {@link FdStream.connect}. Writes made before
   * it connects wait and go out in order once it has.
   */
  constructor(options?: FdStreamOptions) {
    const opts = optionsObject(options, 'options')
    if (opts.allowHalfOpen !== undefined && typeof opts.allowHalfOpen !== 'boolean') {
      throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "allowHalfOpen" option must be of type boolean')
    }
    const maxQueuedFds = integerOption(opts.maxQueuedFds, 'maxQueuedFds', 0, 2 ** 20, DEFAULT_STREAM_MAX_QUEUED_FDS)
    super({
      allowHalfOpen: opts.allowHalfOpen === true,
      readableHighWaterMark: highWaterMark(opts.readableHighWaterMark, 'readableHighWaterMark'),
      writableHighWaterMark: highWaterMark(opts.writableHighWaterMark, 'writableHighWaterMark'),
      decodeStrings: true,
    })
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
    if (this.#native !== undefined || this.#connecting) {
      throw makeError(Error, 'ERR_SOCKET_CONNECTED', 'The stream is already connected or connecting')
    }
    const type = native.unixSocketType(fd)
    if (type !== 'stream') {
      throw makeError(
        TypeError,
        'ERR_INVALID_ARG_VALUE',
        `FdStream.from() takes a Unix stream socket; fd ${fd} is a ${type} socket: use FdSocket.from()`,
      )
    }
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
    if (this.#native !== undefined || this.#connecting) {
      throw makeError(Error, 'ERR_SOCKET_CONNECTED', 'The stream is already connected or connecting')
    }
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
    let fd = -1
    try {
      fd = native.unixSocket('stream')
      const bytes = Buffer.from(address, 'utf8')
      // A Unix connect completes at once, or says EAGAIN while the
      // listener's backlog is full: retry with a growing delay.
      for (let delay = 1; !native.connectUnix(fd, bytes); delay = Math.min(delay * 2, 50)) {
        await new Promise<void>((resolve) => setTimeout(resolve, delay))
        if (this.destroyed) break
      }
    } catch (err) {
      if (fd >= 0) closeQuietly([fd])
      ;(err as FdpassError & { address?: string }).address = shown
      this.#connected(err as Error)
      return
    }
    if (this.destroyed) {
      closeQuietly([fd])
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
    if (this.#construction !== undefined) return
    this.#construction = { error }
    const constructed = this.#constructed
    this.#constructed = undefined
    // Before Node has asked (it asks on the next tick), _construct answers.
    constructed?.(error)
  }

  /**
   * Destroys the stream (see `stream.Duplex#destroy`): closes the socket and
   * every queued fd; writes the kernel has not taken are dropped.
   */
  override destroy(error?: Error): this {
    super.destroy(error)
    // Never connected, nor connecting: Node waits for the construction to
    // end before it destroys; end it.
    if (!this.#connecting && this.#native === undefined) this.#connected()
    return this
  }

  /** @internal Emits `'connect'`; the `usocket` face emits its own event (see src/usocket.ts). */
  protected emitConnect(): void {
    this.emit('connect')
  }

  /** Makes the native socket for a connected `fd`, which this stream owns from here on. */
  #attach(fd: number): void {
    // Unframed: each recvmsg (up to READ_CHUNK bytes) is one read of the stream.
    this.#native = openNativeSocket(
      fd,
      'stream',
      { framing: false, maxBytes: READ_CHUNK, maxFds: MAX_FDS_PER_MESSAGE },
      this.#callback,
      ensureSharedBuffers(),
    )
    this.#id = this.#native.id
    this.#fd = fd
    if (!this.#refed) this.#native.setRef(false)
    dropped.register(this, this.#held, this)
    this.#connected()
    this.#updateReading()
  }

  /** The socket's fd (still owned by the stream); -1 before it connects and once it is destroyed. */
  get fd(): number {
    return this.destroyed ? -1 : this.#fd
  }

  /** Whether a `connect()` is under way. */
  get connecting(): boolean {
    return this.#connecting
  }

  /** Whether the stream has no socket yet (not connected), as `net.Socket#pending`. */
  get pending(): boolean {
    return this.#native === undefined
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
    if (fds.length > 0) this.#updateReading()
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
    if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    if (typeof chunk === 'string' || chunk instanceof Uint8Array || chunk === null || typeof chunk !== 'object') {
      return encoding === undefined ? super.write(chunk, callback) : super.write(chunk, encoding, callback)
    }
    const { data, entry } = this.#resolveChunk(chunk)
    if (entry === undefined) return super.write(data, callback)
    this.#chunkFds.set(data, entry)
    // A write after end() or destroy() fails without being queued.
    const refused = this.writableEnded || this.destroyed
    const result = super.write(data, callback)
    // Still here: the write waits behind others (or the connect). The
    // caller may close its fds now; hold duplicates until they go out.
    const waits = this.#chunkFds.get(data) === entry && !refused && !this.destroyed
    if (waits && !entry.owned && entry.fds.length > 0) {
      try {
        entry.fds = native.duplicateFds(entry.fds, ensureSharedBuffers())
        entry.owned = true
        this.#held.duplicates.add(entry)
      } catch (err) {
        entry.fds = []
        entry.error = err as Error
      }
    }
    return result
  }

  /** Ends the writable side (after `chunk`, which may carry fds): see {@link FdStream.write}. */
  override end(
    chunk?: Uint8Array | string | FdStreamChunk | (() => void),
    encoding?: BufferEncoding | (() => void),
    callback?: () => void,
  ): this {
    if (typeof chunk === 'function') return super.end(chunk)
    if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    if (chunk !== undefined && chunk !== null) {
      if (typeof chunk === 'object' && !(chunk instanceof Uint8Array)) this.write(chunk)
      else if (encoding === undefined) this.write(chunk)
      else this.write(chunk, encoding)
    }
    return super.end(callback)
  }

  /** Checks a `{ data, fds }` chunk and resolves its fds. */
  #resolveChunk(chunk: FdStreamChunk): { data: Buffer; entry: ChunkFds | undefined } {
    const bytes = toBytes(chunk.data, 'chunk.data')
    // A fresh Buffer object: the key of this write's fds, whatever the caller reuses.
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const callback = chunk.callback
    if (callback !== undefined && typeof callback !== 'function') {
      throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "chunk.callback" property must be a function')
    }
    const list = chunk.fds
    if (list === undefined || list === null) {
      return { data, entry: callback ? { fds: [], owned: false, chunk } : undefined }
    }
    if (!Array.isArray(list))
      throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "chunk.fds" property must be an array')
    const count = list.length
    if (count > MAX_FDS_PER_MESSAGE) {
      throw makeError(
        RangeError,
        'ERR_TOO_MANY_FDS',
        `cannot write ${count} fds with one chunk: the limit is ${MAX_FDS_PER_MESSAGE} (split them over several chunks)`,
      )
    }
    const fds = new Array<number>(count)
    for (let i = 0; i < count; i++) fds[i] = toFd(list[i], `chunk.fds[${i}]`)
    if (count > 0 && data.length === 0) {
      throw makeError(
        Error,
        'ERR_EMPTY_DATA',
        'fds travel with a byte on a stream socket: write at least one byte of data with them',
      )
    }
    return { data, entry: { fds, owned: false, chunk: callback ? chunk : undefined } }
  }

  /** Lets pending reads and writes keep the process alive (the default). */
  ref(): this {
    this.#refed = true
    this.#native?.setRef(true)
    return this
  }

  /** Lets the process exit even while reads or writes are pending. */
  unref(): this {
    this.#refed = false
    this.#native?.setRef(false)
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
    if (this.#native === undefined || this.destroyed) throw closedError('peerCredentials: the stream is not connected')
    return this.#native.peerCredentials()
  }

  /** @internal */
  override _construct(callback: (error?: Error | null) => void): void {
    if (this.#construction !== undefined) callback(this.#construction.error)
    else this.#constructed = callback
  }

  /** @internal */
  override _read(): void {
    this.#wantRead = true
    // What the kernel holds already is read now, without a turn of the
    // event loop; the loop watches the socket for the rest.
    // Not while the queue is full: the bytes pushed here reach 'data'
    // listeners only on the next tick, so they could not take fds between
    // the reads of this batch, and the loop's read below is the one that
    // finds out whether the peer oversteps maxQueuedFds.
    const full = this.#maxQueuedFds > 0 && this.#queue.length >= this.#maxQueuedFds
    if (!full && !this.#delivering && !this.#peerEnded && this.#native !== undefined && !this.destroyed) {
      this.#readNow()
    }
    this.#updateReading()
  }

  /** One lean read of up to READ_ROOM reads (see src/internal/lean.ts), within the fd queue's room. */
  #readNow(): void {
    scratchInts[0] = this.#id
    scratchInts[1] = READ_ROOM
    scratchInts[2] = this.#fdRoomNow()
    lean.socketRead()
    const count = scratchInts[0]!
    // -1: delivered through #onEvent already (the end, an error, a large batch).
    if (count > 0) {
      beginBatch()
      this.#deliver(count)
    }
  }

  /**
   * The fds a batch may bring: a batch stops at the read that fills the
   * queue; once it is full, one read more, whose fds (if any) are the
   * error (see #deliver).
   */
  #fdRoomNow(): number {
    return Math.max(1, this.#maxQueuedFds - this.#queue.length)
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    const entry = this.#chunkFds.get(chunk)
    if (entry !== undefined) {
      this.#chunkFds.delete(chunk)
      this.#held.duplicates.delete(entry)
    }
    if (entry?.error !== undefined) {
      callback(entry.error)
      return
    }
    const done: WriteCallback = entry?.chunk?.callback
      ? (error) => {
          if (!error) entry.chunk!.callback!(entry.chunk!)
          callback(error)
        }
      : callback
    const fds = entry?.fds ?? []
    if (chunk.length === 0 && fds.length === 0) {
      done()
      return
    }
    if (this.#native === undefined) {
      if (entry?.owned) closeQuietly(fds)
      done(closedError('write: the stream is not connected'))
      return
    }
    scratchInts[0] = this.#id
    scratchInts[1] = fds.length
    for (let i = 0; i < fds.length; i++) scratchFds[i] = fds[i]!
    let sentNow: boolean
    try {
      lean.socketSend(chunk)
      sentNow = scratchInts[0] === 1
    } catch (err) {
      done(err as Error)
      return
    } finally {
      // The kernel, or the native queue's own duplicates, hold them now.
      if (entry?.owned) closeQuietly(fds)
    }
    if (sentNow) done()
    else this.#pendingWrites.push(done)
  }

  /** @internal Half-closes once every write is out. */
  override _final(callback: (error?: Error | null) => void): void {
    if (this.#native === undefined || this.destroyed) {
      callback()
      return
    }
    try {
      native.shutdownWrite(this.#fd)
    } catch (err) {
      // The peer is gone already: there is nothing left to end.
      if ((err as FdpassError).code !== 'ENOTCONN') {
        callback(err as Error)
        return
      }
    }
    callback()
  }

  /** @internal Closes the socket and every fd still queued. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#connecting = false
    this.#constructed = undefined
    if (this.#native !== undefined) {
      this.#native.close()
      dropped.unregister(this)
    }
    // The queue, and the duplicates of writes that never reached the socket.
    this.#held.closeAll()
    // Writes the kernel had not taken: their callbacks learn that the
    // stream was destroyed (Node reports ERR_STREAM_DESTROYED).
    for (const pending of this.#pendingWrites.splice(0)) pending()
    callback(error)
  }

  #updateReading(): void {
    const socket = this.#native
    if (socket === undefined || this.destroyed) return
    const room = this.#wantRead && !this.#peerEnded ? READ_ROOM : 0
    const fdRoom = room > 0 ? this.#fdRoomNow() : 0
    if (room !== this.#room || fdRoom !== this.#fdRoom) {
      this.#room = room
      this.#fdRoom = fdRoom
      socket.setReading(room, fdRoom)
    }
  }

  #onEvent(kind: number, a: unknown, b: unknown): void {
    switch (kind) {
      case Ev.Published:
        beginBatch()
        this.#deliver(a as number)
        break
      case Ev.Messages:
        beginBatch(a as Buffer, b as Int32Array)
        this.#deliver((b as Int32Array)[0] as number)
        break
      case Ev.End:
        this.#peerEnded = true
        this.push(null)
        break
      case Ev.Error:
        this.destroy(a as Error)
        break
      case Ev.Written:
        for (const done of this.#pendingWrites.splice(0, a as number)) done()
        break
      case Ev.WriteError:
        for (const done of this.#pendingWrites.splice(0, b as number)) done(a as Error)
        break
    }
    this.#updateReading()
  }

  /** Queues the fds and pushes the bytes of `count` reads of the batch begun. */
  #deliver(count: number): void {
    this.#delivering = true
    try {
      this.#deliverBatch(count)
    } finally {
      this.#delivering = false
    }
  }

  #deliverBatch(count: number): void {
    for (let k = 0; k < count; k++) {
      const { data, fds } = nextMessage()
      if (this.destroyed) {
        closeQuietly(fds)
        continue
      }
      if (fds.length > 0) {
        this.#queue.push(fds)
        if (this.#queue.length > this.#maxQueuedFds) {
          this.destroy(
            makeError(
              Error,
              'ERR_FDPASS_TOO_MANY_QUEUED_FDS',
              `the peer sent more than maxQueuedFds (${this.#maxQueuedFds}) fds that were not taken: take them with takeFds() as the protocol says, or raise maxQueuedFds`,
            ),
          )
          continue
        }
      }
      if (data.length > 0 && !this.push(data)) this.#wantRead = false
    }
  }
}

function highWaterMark(value: unknown, name: string): number | undefined {
  return value === undefined ? undefined : integerOption(value, name, 0, 2 ** 31 - 1, 0)
}

export { kAdopt }
