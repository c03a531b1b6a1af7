/**
 * `FdServer`: a listening Unix domain socket on Node's event loop whose
 * connections are `FdSocket`s.
 */
import { makeError, type FdpassError } from './errors'
import { FdSocket } from './fd-socket'
import { Ev } from './internal/native-constants'
import { listenerState } from './internal/listener-state'
import { lean, scratchInts } from './internal/lean'
import { closeQuietly } from './internal/fd-release'
import { native } from './internal/native'
import { openNativeSocket, type NativeSocketHandle } from './internal/native-socket'
import { assertEventLoopSockets } from './internal/runtime'
import { unlinkIfOwned, type OwnedPath } from './internal/socket-file'
import { resolveOptions, type ResolvedOptions } from './internal/socket-options'
import { kAdopt } from './internal/symbols'
import { optionsObject, validateFd } from './internal/validate'
import { abortError, closedError, iterate, settle, wait, type Waiter } from './internal/waiters'
import type { SocketType } from './raw'
import type { PeerCredentials, ReceiveOptions, SocketOptions } from './socket-types'

/**
 * Decides whether a connecting peer may be served: synchronously, with
 * `true`. Anything else (a Promise from an async function too) refuses the
 * peer, and so does a throw.
 */
export type PeerCheck = (credentials: PeerCredentials) => boolean

/** Options of {@link FdServer.from}: those of the connections it accepts, and the peer check. */
export interface ServerOptions extends SocketOptions {
  /** Checks each connecting peer before it is handed out (as `listen()` does: see `ListenOptions.allowPeer`). */
  allowPeer?: PeerCheck
}

/** The hook by which a listener handoff keeps a served socket file in place. */
export const kKeepSocketFile = Symbol('fdpass.keepSocketFile')

const ACCEPT_BATCH = 64

/**
 * A listening socket made by `listen()`, or adopted by {@link FdServer.from}.
 * Accept connections with {@link FdServer.accept} or
 * `for await (const socket of server)`.
 */
export class FdServer implements AsyncIterable<FdSocket> {
  /** The path it listens on (a leading `'\0'` for a Linux abstract name). */
  readonly path: string
  readonly #native: NativeSocketHandle
  /** The native socket's id, which the lean per-message calls take (see internal/lean.ts). */
  readonly #id: number
  readonly #type: SocketType
  readonly #options: ResolvedOptions
  #owned: OwnedPath | undefined
  readonly #allowPeer: PeerCheck | undefined
  #sockets: FdSocket[] = []
  #waiters: Array<Waiter<FdSocket>> = []
  #room = 0
  #closed = false
  #reading = false
  #lastError: FdpassError | undefined
  /**
   * Whether accepts may run whenever asked, in batches: only on a
   * non-blocking listener. A blocking one (adopted by FdServer.from) is
   * accepted from once per readiness event, one connection at a time, so
   * that no accept can block the event loop.
   */
  readonly #eager: boolean
  #whenClosed: Promise<void> | undefined
  #resolveClosed: (() => void) | undefined
  // Held here: the native side keeps the callback only weakly while idle.
  readonly #callback: (kind: number, a: unknown, b: unknown) => void

  /** @internal Made by `listen()` and {@link FdServer.from}. */
  constructor(
    token: typeof kAdopt,
    fd: number,
    path: string,
    type: SocketType,
    options: ResolvedOptions,
    owned: OwnedPath | undefined,
    allowPeer: PeerCheck | undefined,
    eager = true,
  ) {
    if (token !== kAdopt) throw makeError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Use listen() or FdServer.from()')
    this.path = path
    this.#eager = eager
    this.#type = type
    this.#options = options
    this.#owned = owned
    this.#allowPeer = allowPeer
    this.#callback = (kind: number, a: unknown, b: unknown) => this.#onEvent(kind, a, b)
    this.#native = openNativeSocket(fd, type, undefined, this.#callback, -1)
    this.#id = this.#native.id
  }

  /**
   * Adopts a listening `AF_UNIX` socket (`'stream'` or `'seqpacket'`) that
   * this process holds as `fd`, e.g. one inherited from a service manager or
   * handed over by the server it replaces, and takes ownership of it:
   * `close()` closes it. The socket file, if any, is left in place on close
   * (the server did not create it), and `path` is `''`.
   *
   * Its blocking mode is left as it is (other processes may hold it, and
   * `O_NONBLOCK` is shared). A non-blocking listener, as Node's and fdpass's
   * own are, is accepted from in batches; a blocking one once per readiness
   * event, one connection at a time. Do not let another process accept on a
   * blocking listener at the same time: a connection it takes between the
   * event and fdpass's accept would leave that accept waiting.
   *
   * Arguments are checked before any syscall. Throws `EBADF`, `ENOTSOCK` or
   * `ERR_NOT_UNIX_SOCKET` for an fd that is not an open `AF_UNIX` socket,
   * and `ERR_SOCKET_NOT_LISTENING` for a datagram socket or a socket on
   * which `listen()` was not called (`SO_ACCEPTCONN` on Linux, the kernel's
   * socket record on macOS, as `socketInfo` reads them); the fd is
   * then left open and still yours.
   *
   * @example
   * const server = FdServer.from(3)
   * for await (const socket of server) handle(socket)
   */
  static from(fd: number, options?: ServerOptions): FdServer {
    assertEventLoopSockets('FdServer.from')
    validateFd(fd, 'fd')
    const opts = optionsObject(options, 'options')
    // Every option is checked before the first syscall; framing is decided once the type is known.
    resolveOptions('stream', opts)
    const allowPeer = opts.allowPeer
    if (allowPeer !== undefined && typeof allowPeer !== 'function') {
      throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "allowPeer" option must be a function')
    }
    const type = native.unixSocketType(fd) as SocketType
    if (type === 'dgram') {
      throw makeError(
        Error,
        'ERR_SOCKET_NOT_LISTENING',
        `fd ${fd} is a datagram socket, which cannot listen: adopt it with FdSocket.from()`,
      )
    }
    const state = listenerState(fd)
    if (state.listening === false) {
      throw makeError(
        Error,
        'ERR_SOCKET_NOT_LISTENING',
        `fd ${fd} is a ${type} socket that does not listen: pass a socket on which listen() was called ` +
          '(adopt a connected one with FdSocket.from())',
      )
    }
    return new FdServer(
      kAdopt,
      fd,
      '',
      type,
      resolveOptions(type, opts),
      undefined,
      allowPeer,
      state.nonBlocking === true,
    )
  }

  /**
   * @internal Called once another process took this listener over (see
   * src/handoff/): its socket file now serves that process, so close() must
   * leave it in place.
   */
  [kKeepSocketFile](): void {
    this.#owned = undefined
  }

  /** The listening socket's fd (owned by the server; can be passed to another process). */
  get fd(): number {
    return this.#native.fd
  }

  /** Accepts the next connection. Rejects with `ERR_SOCKET_CLOSED` after `close()`. */
  accept(options?: ReceiveOptions): Promise<FdSocket> {
    return this.#next(false, options?.signal) as Promise<FdSocket>
  }

  /** Iterates over incoming connections until the server is closed. */
  [Symbol.asyncIterator](): AsyncIterator<FdSocket> {
    return iterate((iterating) => this.#next(iterating, undefined))
  }

  /** Lets a pending accept keep the process alive (the default). */
  ref(): this {
    if (!this.#closed) this.#native.setRef(true)
    return this
  }

  /** Lets the process exit even while an accept is pending. */
  unref(): this {
    if (!this.#closed) this.#native.setRef(false)
    return this
  }

  /**
   * Stops listening and removes the socket file it created (if the file is
   * still the one it created). Pending accepts reject with
   * `ERR_SOCKET_CLOSED`; accepted connections nobody took are closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#native.close()
    for (const socket of this.#sockets.splice(0)) socket.close()
    const error = closedError('the server was closed')
    for (const waiter of this.#waiters.splice(0)) settle(waiter, undefined, error)
    if (this.#owned) unlinkIfOwned(this.#owned)
    this.#resolveClosed?.()
  }

  /**
   * Resolves once the server is closed: its fd closed, connections nobody
   * took closed, pending accepts rejected and its socket file removed. It
   * never rejects. Resolves at once when the server is closed already.
   * Connections handed out before stay open: each has its own
   * {@link FdSocket.whenClosed}.
   */
  whenClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    this.#whenClosed ??= new Promise<void>((resolve) => {
      this.#resolveClosed = resolve
    })
    return this.#whenClosed
  }

  /** Same as {@link FdServer.close}, for `await using` declarations. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  #next(iterating: boolean, signal: AbortSignal | undefined): Promise<FdSocket | undefined> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    if (this.#eager && this.#sockets.length === 0 && !this.#closed && this.#waiters.length === 0) {
      this.#reading = true
      scratchInts[0] = this.#id
      scratchInts[1] = ACCEPT_BATCH
      scratchInts[2] = 0
      lean.socketRead()
      this.#reading = false
    }
    const socket = this.#sockets.shift()
    if (socket) return Promise.resolve(socket)
    if (this.#lastError) {
      const err = this.#lastError
      this.#lastError = undefined
      return Promise.reject(err)
    }
    if (this.#closed) {
      return iterating ? Promise.resolve(undefined) : Promise.reject(closedError('accept: the server is closed'))
    }
    return wait(this.#waiters, iterating, signal, () => this.#updateReading())
  }

  #updateReading(): void {
    if (this.#closed) return
    const room = this.#waiters.length > 0 ? (this.#eager ? ACCEPT_BATCH : 1) : 0
    if (room !== this.#room) {
      this.#room = room
      this.#native.setReading(room, 0)
    }
  }

  #onEvent(kind: number, a: unknown, b: unknown): void {
    if (kind === Ev.Accepted) {
      const meta = b as Int32Array
      for (let i = 1; i <= (meta[0] as number); i++) this.#adopt(meta[i] as number)
    } else if ((kind === Ev.Error || kind === Ev.WriteError) && !this.#closed) {
      // Accept failed (e.g. EMFILE): the server keeps listening.
      const waiter = this.#waiters.shift()
      if (waiter) settle(waiter, undefined, a as Error)
      else this.#lastError = a as FdpassError
    }
    if (!this.#reading) this.#updateReading()
  }

  #adopt(fd: number): void {
    if (this.#closed) {
      // Accepted in the batch during which the server was closed (by
      // allowPeer, say): nobody may have it.
      closeQuietly([fd])
      return
    }
    let socket: FdSocket
    try {
      socket = FdSocket[kAdopt](fd, this.#type, this.#options)
    } catch (err) {
      // The constructor owns (and has closed) the fd, failure included.
      const waiter = this.#waiters.shift()
      if (waiter) settle(waiter, undefined, err as Error)
      return
    }
    if (this.#allowPeer) {
      let allowed = false
      try {
        allowed = this.#allowPeer(socket.peerCredentials()) === true
      } catch {
        allowed = false
      }
      // Refused before anything was read from it; and allowPeer may have
      // closed the server.
      if (!allowed || this.#closed) {
        socket.close()
        return
      }
    }
    const waiter = this.#waiters.shift()
    if (waiter) settle(waiter, socket, undefined)
    else this.#sockets.push(socket)
  }
}
