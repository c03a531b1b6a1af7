/**
 * `FdStreamServer`: a listening Unix stream socket whose connections are
 * {@link FdStream}s, shaped like `net.Server` (`'connection'`, `listen`,
 * `close`, `address`).
 */
import { EventEmitter } from 'node:events'

import { makeError, type FdpassError } from '../errors'
import type { PeerCheck } from '../fd-server'
import { Ev } from '../internal/native-constants'
import { openNativeSocket, type NativeSocketHandle } from '../internal/native-socket'
import { placeSocket, unlinkIfOwned, type OwnedPath } from '../internal/socket-file'
import { native } from '../internal/native'
import { assertEventLoopSockets } from '../internal/runtime'
import { integerOption, optionsObject } from '../internal/validate'
import { closedError } from '../internal/waiters'
import { socketPath } from './address'
import { closeQuietly } from '../internal/fd-release'
import { FdStream, kAdopt, type FdStreamOptions } from './fd-stream'

const ACCEPT_BATCH = 64

/** Options of {@link FdStreamServer.listen}. */
export interface StreamListenOptions {
  /** Where to listen: a path, or on Linux an abstract name after `'\0'` or `'@'`. */
  path: string
  /** The queue of pending connections (0 to 2^31 - 1, default 511, as `net`). */
  backlog?: number
  /** Permissions of the socket file (0 to 0o777), set before anyone can connect (see `ListenOptions.mode`). */
  mode?: number
  /** Replace a stale socket file nobody listens on (see `ListenOptions.replaceStale`). */
  replaceStale?: boolean
  /**
   * Checks each connecting peer's credentials (pid, uid, gid as of connect
   * time) before a stream is made for it: a connection for which it does not
   * return `true` (or throws) is closed before anything is read from it, and
   * no `'connection'` is emitted (as `ListenOptions.allowPeer`).
   */
  allowPeer?: PeerCheck
}

/**
 * A server of {@link FdStream}s. Make one with `createServer()`, then
 * `listen(path)`; each accepted connection is emitted as `'connection'`.
 * Events: `'listening'`, `'connection'` (an `FdStream`), `'error'` (listen
 * errors such as `EADDRINUSE`, accept errors such as `EMFILE`, after which it
 * keeps listening), `'close'` (once closed and every connection it made has
 * closed, as `net.Server`).
 */
export class FdStreamServer extends EventEmitter {
  readonly #options: FdStreamOptions | undefined
  #native: NativeSocketHandle | undefined
  #path: string | undefined
  #owned: OwnedPath | undefined
  #placing = false
  #closing = false
  #refed = true
  #allowPeer: PeerCheck | undefined
  readonly #connections = new Set<FdStream>()
  readonly #callback = (kind: number, a: unknown, b: unknown): void => this.#onEvent(kind, a, b)

  /** A server not listening yet; `connectionListener` is added as a `'connection'` listener. */
  constructor(options?: FdStreamOptions, connectionListener?: (stream: FdStream) => void) {
    super()
    // Checked here, so that a bad option fails at once and not at each connection.
    new FdStream(options).destroy()
    this.#options = options
    if (connectionListener !== undefined) {
      if (typeof connectionListener !== 'function') {
        throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "connectionListener" argument must be a function')
      }
      this.on('connection', connectionListener)
    }
  }

  /** Whether the server accepts connections. */
  get listening(): boolean {
    return this.#native !== undefined && !this.#closing
  }

  /** The listening socket's fd, or -1. */
  get fd(): number {
    return this.#native?.fd ?? -1
  }

  /**
   * Listens on `path` (or `{ path, backlog, mode, replaceStale }`); emits
   * `'listening'` (and calls `listener`), or `'error'` (`EADDRINUSE`...).
   * `close()` removes the socket file it created.
   */
  listen(path: string | StreamListenOptions, listener?: () => void): this {
    assertEventLoopSockets('FdStreamServer.listen')
    if (this.#native !== undefined || this.#placing) {
      throw makeError(Error, 'ERR_SERVER_ALREADY_LISTEN', 'listen() was called already: make a new server')
    }
    const opts = typeof path === 'string' ? { path } : optionsObject(path, 'options')
    const address = socketPath(opts.path)
    const backlog = integerOption(opts.backlog, 'backlog', 0, 2 ** 31 - 1, 511)
    const mode = opts.mode === undefined ? undefined : integerOption(opts.mode, 'mode', 0, 0o777, 0)
    const allowPeer = opts.allowPeer
    if (allowPeer !== undefined && typeof allowPeer !== 'function') {
      throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "allowPeer" option must be a function')
    }
    if (listener !== undefined) {
      if (typeof listener !== 'function')
        throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "listener" argument must be a function')
      this.once('listening', listener)
    }
    this.#allowPeer = allowPeer as PeerCheck | undefined
    this.#placing = true
    this.#closing = false
    void this.#listen(address, opts.path as string, backlog, mode, opts.replaceStale === true)
    return this
  }

  async #listen(
    address: string,
    shown: string,
    backlog: number,
    mode: number | undefined,
    replaceStale: boolean,
  ): Promise<void> {
    let fd = -1
    try {
      fd = native.unixSocket('stream')
      this.#owned = await placeSocket({ fd, path: address, type: 'stream', mode, replaceStale, backlog })
      if (this.#closing) throw closedError('listen: the server was closed')
      this.#native = openNativeSocket(fd, 'stream', undefined, this.#callback, -1)
    } catch (err) {
      this.#placing = false
      if (this.#native === undefined && fd >= 0) closeQuietly([fd])
      if (this.#owned) unlinkIfOwned(this.#owned)
      this.#owned = undefined
      if (this.#closing) return
      ;(err as FdpassError & { address?: string }).address = shown
      this.emit('error', err)
      return
    }
    this.#placing = false
    this.#path = shown
    if (!this.#refed) this.#native.setRef(false)
    this.#native.setReading(ACCEPT_BATCH, 0)
    this.emit('listening')
  }

  /** The path it listens on (as given to `listen`), or null when not listening. */
  address(): string | null {
    return this.listening ? (this.#path ?? null) : null
  }

  /**
   * Stops accepting and removes the socket file it created. Connections
   * already made stay open; `'close'` (and `callback`) come once they have
   * all closed. `callback` gets `ERR_SERVER_NOT_RUNNING` if it was not listening.
   */
  close(callback?: (error?: Error) => void): this {
    if (callback !== undefined && typeof callback !== 'function') {
      throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "callback" argument must be a function')
    }
    const wasListening = this.#native !== undefined || this.#placing
    if (!wasListening || this.#closing) {
      if (callback) {
        const err = makeError(Error, 'ERR_SERVER_NOT_RUNNING', 'Server is not running.')
        process.nextTick(callback, err)
      }
      return this
    }
    this.#closing = true
    if (callback) this.once('close', callback)
    this.#native?.close()
    this.#native = undefined
    if (this.#owned) unlinkIfOwned(this.#owned)
    this.#owned = undefined
    this.#maybeClosed()
    return this
  }

  /** Same as `close()`, resolved on `'close'`, for `await using` declarations. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.listening) return
    await new Promise<void>((resolve) => this.close(() => resolve()))
  }

  /** Lets the listening socket keep the process alive (the default). */
  ref(): this {
    this.#refed = true
    this.#native?.setRef(true)
    return this
  }

  /** Lets the process exit while the server listens. */
  unref(): this {
    this.#refed = false
    this.#native?.setRef(false)
    return this
  }

  /** @internal The class of the streams it makes (the `usocket` face makes its own). */
  protected streamClass(): typeof FdStream {
    return FdStream
  }

  #maybeClosed(): void {
    if (this.#closing && this.#native === undefined && !this.#placing && this.#connections.size === 0) {
      process.nextTick(() => this.emit('close'))
      this.#closing = false
      this.#placing = false
      // Marks the server as closed for good: 'close' is emitted once.
      this.#path = undefined
    }
  }

  #onEvent(kind: number, a: unknown, b: unknown): void {
    if (kind === Ev.Accepted) {
      const meta = b as Int32Array
      for (let i = 1; i <= (meta[0] as number); i++) this.#adopt(meta[i] as number)
    } else if ((kind === Ev.Error || kind === Ev.WriteError) && this.#native !== undefined) {
      // Accept failed (e.g. EMFILE): the server keeps listening.
      this.emit('error', a as Error)
    }
  }

  /**
   * Whether `allowPeer` (if any) lets `stream`'s peer in; if not, the stream
   * is destroyed before anything was read from it. Also refused when
   * `allowPeer` closed the server.
   */
  #allowed(stream: FdStream): boolean {
    if (this.#allowPeer === undefined) return true
    let allowed = false
    try {
      allowed = this.#allowPeer(stream.peerCredentials()) === true
    } catch {
      allowed = false
    }
    if (allowed && this.#native !== undefined) return true
    stream.destroy()
    return false
  }

  #adopt(fd: number): void {
    if (this.#native === undefined) {
      closeQuietly([fd])
      return
    }
    let stream: FdStream
    try {
      stream = this.streamClass()[kAdopt](fd, this.#options)
    } catch (err) {
      // The native socket owns the fd from its constructor on, failure included.
      this.emit('error', err)
      return
    }
    if (!this.#allowed(stream)) return
    this.#connections.add(stream)
    stream.once('close', () => {
      this.#connections.delete(stream)
      this.#maybeClosed()
    })
    this.emit('connection', stream)
  }
}

/** Makes an {@link FdStreamServer}; call `listen(path)` on it. */
export function createServer(
  options?: FdStreamOptions | ((stream: FdStream) => void),
  connectionListener?: (stream: FdStream) => void,
): FdStreamServer {
  if (typeof options === 'function') return new FdStreamServer(undefined, options)
  return new FdStreamServer(options, connectionListener)
}
