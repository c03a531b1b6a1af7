/**
 * `fdpass/usocket`: what protocol libraries written for the `usocket` addon
 * (which no longer builds on current Node) use of it, over fdpass's
 * {@link FdStream}. Alias the `usocket` package to this entry and `dbus-next`
 * passes fds (D-Bus `UNIX_FD`) with no code change: see the README's
 * "Protocols" section.
 *
 * What it keeps of `usocket`: `new USocket({ path | fd, allowHalfOpen }, cb)`,
 * `connect()`, the `'connected'` event, `read(n, fdCount)` returning
 * `{ data, fds }`, `write({ data, fds, callback })`, and a `UServer` whose
 * `'connection'` gives `USocket`s. Fds are plain numbers, yours to close.
 *
 * @packageDocumentation
 */
import { makeError } from './errors'
import { FdStream, type FdStreamOptions } from './stream/fd-stream'
import { FdStreamServer, type StreamListenOptions } from './stream/server'
import { fdCount as checkCount } from './stream/fd-queue'
import { optionsObject } from './internal/validate'

/** Options of a {@link USocket}, as `usocket` took them (plus `maxQueuedFds`). */
export interface USocketOptions {
  /** Connect to this path (a leading `'\0'` or `'@'` names a Linux abstract socket). */
  path?: string
  /** Adopt this connected Unix stream socket instead (the USocket owns it). */
  fd?: number
  /** See {@link FdStreamOptions.allowHalfOpen} (default `false`). */
  allowHalfOpen?: boolean
  /** See {@link FdStreamOptions.maxQueuedFds} (default 1024). */
  maxQueuedFds?: number
}

/** What {@link USocket.read} returns when asked for fds too. */
export interface USocketReadResult {
  /** The bytes read; null only when `read(0 or undefined, n)` found none. */
  data: Buffer | null
  /** The fds taken from the queue, in arrival order: yours to close. */
  fds: number[]
}

/**
 * `usocket`'s `USocket`, over {@link FdStream}: everything an `FdStream`
 * does, plus `usocket`'s way of reading fds with bytes.
 *
 * It emits `'connected'` when it has connected, and `'connect'` too unless
 * someone listens to `'connected'`: code written for `usocket` (such as
 * `dbus-next`, which starts its handshake on either) sees it once, code
 * written for `net` sees `'connect'`.
 */
export class USocket extends FdStream {
  /** Connects to `options.path` (or adopts `options.fd`); `callback` runs on `'connected'`. */
  constructor(options?: string | USocketOptions, callback?: () => void) {
    const opts = typeof options === 'string' ? { path: options } : optionsObject(options, 'options')
    const streamOptions: FdStreamOptions = {}
    if (opts.allowHalfOpen !== undefined) streamOptions.allowHalfOpen = opts.allowHalfOpen
    if (opts.maxQueuedFds !== undefined) streamOptions.maxQueuedFds = opts.maxQueuedFds
    super(streamOptions)
    if (typeof opts.fd === 'number') {
      this.adoptFd(opts.fd)
      if (callback !== undefined) process.nextTick(callback)
    } else if (opts.path !== undefined) this.connect(opts.path, callback)
  }

  /**
   * Connects to `options` (a path, or `{ path }`); `callback` runs on
   * `'connected'`. Errors are emitted as `'error'`.
   */
  override connect(options: string | USocketOptions, callback?: () => void): this {
    const path = typeof options === 'string' ? options : optionsObject(options, 'options').path
    if (callback !== undefined && typeof callback !== 'function') {
      throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "callback" argument must be a function')
    }
    super.connect(path as string)
    if (callback !== undefined) this.once('connected', callback)
    return this
  }

  /**
   * `read(size)` reads bytes as any Readable. `read(size, fdCount)` also
   * takes `fdCount` fds from the queue (null: every queued fd, as
   * `dbus-next` asks) and returns `{ data, fds }`; it returns null, taking
   * nothing, when fewer than `size` bytes or fewer than `fdCount` fds wait.
   */
  override read(size?: number): Buffer | null
  /** Reads `size` bytes and takes `fdCount` fds (null: all): see the first signature. */
  override read(size: number | undefined, fdCount: number | null): USocketReadResult | null
  override read(size?: number, fdCount?: number | null): Buffer | USocketReadResult | null {
    if (fdCount === undefined) return super.read(size) as Buffer | null
    if (fdCount !== null) {
      checkCount(fdCount, 'fdCount')
      if (this.queuedFds < fdCount) return null
    }
    const data = super.read(size) as Buffer | null
    if (size && data === null) return null
    return { data, fds: this.takeFds(fdCount ?? undefined) }
  }

  /** @internal */
  protected override emitConnect(): void {
    const usocketCode = this.listenerCount('connected') > 0
    this.emit('connected')
    if (!usocketCode) this.emit('connect')
  }
}

/**
 * `usocket`'s `UServer`: an {@link FdStreamServer} whose `'connection'`
 * gives {@link USocket}s, with `listen(path, backlog, callback)`.
 */
export class UServer extends FdStreamServer {
  /** Listens on `path` (or `{ path, backlog }`); `callback` runs on `'listening'`. */
  override listen(path: string | StreamListenOptions, backlog?: number | (() => void), callback?: () => void): this {
    if (typeof backlog === 'function') {
      callback = backlog
      backlog = undefined
    }
    const options: StreamListenOptions =
      typeof path === 'string' ? { path } : ({ ...optionsObject(path, 'options') } as StreamListenOptions)
    if (backlog !== undefined) options.backlog = backlog
    return super.listen(options, callback)
  }

  /** @internal */
  protected override streamClass(): typeof FdStream {
    return USocket
  }
}
