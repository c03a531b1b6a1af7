/**
 * The old process's side of a listener handoff: `serveListeners()` waits on
 * a Unix socket for its successor, hands it the listeners, and reports when
 * the successor says it serves them, so that the old process can stop
 * accepting and drain ("drain then close").
 */
import { describe, makeError, type FdpassError } from '../errors'
import { FdServer, kKeepSocketFile, type PeerCheck } from '../fd-server'
import type { FdSocket, PeerCredentials } from '../fd-socket'
import { listen } from '../connect'
import { integerOption, optionsObject } from '../internal/validate'
import { protocolError, startDeadline, timeoutError, untilAborted } from '../internal/deadline'
import { ServeInTurn } from '../internal/serve-in-turn'
import { closedError } from '../internal/waiters'
import { decode, encode, FDS_MESSAGE, FDS_PER_MESSAGE, MAX_MESSAGE_BYTES } from './protocol'
import { checkSources, describeSource, type Described, type HandoffSource } from './sources'

/** Options of {@link serveListeners}. */
export interface ServeListenersOptions {
  /** Permissions of the handoff socket file (0 to 0o777, default `0o600`: only this user can connect). */
  mode?: number
  /** Replace a stale socket file left at the path by a process that died (see `listen()`). */
  replaceStale?: boolean
  /**
   * Which connecting processes may take the listeners. Default: a process
   * of the same user, or root. Decided on the peer's uid and gid.
   */
  allowPeer?: PeerCheck
  /**
   * How long a successor has, from connecting, to say it serves (`ready()`),
   * in ms (0 to 2^31 - 1, default 60000; 0: no limit). A successor that takes
   * longer, closes, or breaks the protocol fails that attempt: the listeners
   * stay with this process, which waits for the next successor.
   */
  timeout?: number
  /**
   * Called with the error of each failed attempt (the handoff keeps waiting):
   * `ECONNRESET` (the successor went away), `ETIMEDOUT`, `ERR_FDPASS_PROTOCOL`,
   * `ERR_SERVER_NOT_RUNNING` (a listener was closed since `serveListeners()`).
   */
  onFailedAttempt?: (error: FdpassError) => void
}

/** Options of {@link ListenerHandoff.taken}. */
export interface TakenOptions {
  /** Stops waiting (rejects with an `AbortError`); the handoff keeps serving. */
  signal?: AbortSignal
}

/** What {@link ListenerHandoff.taken} resolves to. */
export interface HandoffResult {
  /** The names of the listeners handed over. */
  names: string[]
  /** The credentials of the process that took them. */
  peer: PeerCredentials
}

const SERVE_LISTENERS_TIMEOUT = 60000

function gone(type: string): FdpassError {
  return makeError(Error, 'ECONNRESET', `the successor went away before sending '${type}'; the listeners stay here`)
}

function sameUserOrRoot(credentials: PeerCredentials): boolean {
  const uid = process.getuid?.()
  return credentials.uid === uid || credentials.uid === 0
}

/**
 * Serves listeners at `path` for the process that replaces this one, which
 * calls {@link takeListeners} with the same path. Resolves once the socket
 * listens. Start the successor after that; it gets every listener (fds and
 * metadata), and once it calls `ready()`, {@link ListenerHandoff.taken}
 * resolves: stop accepting then (`server.close()` on each, which waits for
 * the connections in progress: "drain then close"). The listening sockets
 * stay open in the successor meanwhile, so no connection is refused.
 *
 * The listeners stay this process's: nothing here closes them. Rejects with
 * `EADDRINUSE` when a socket already exists at `path` (see `replaceStale`).
 *
 * @example
 * const handoff = await serveListeners('/run/app/handoff.sock', { web: server })
 * spawn(process.execPath, [__filename], { stdio: 'inherit' })
 * await handoff.taken()
 * server.close() // the successor serves now; finish the requests in progress
 */
export async function serveListeners(
  path: string,
  listeners: Record<string, HandoffSource>,
  options?: ServeListenersOptions,
): Promise<ListenerHandoff> {
  const opts = optionsObject(options, 'options')
  const entries = checkSources(listeners)
  const timeout = integerOption(opts.timeout, 'timeout', 0, 2 ** 31 - 1, SERVE_LISTENERS_TIMEOUT)
  const allowPeer = opts.allowPeer ?? sameUserOrRoot
  if (typeof allowPeer !== 'function')
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "allowPeer" option must be a function')
  const onFailed = opts.onFailedAttempt
  if (onFailed !== undefined && typeof onFailed !== 'function') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "onFailedAttempt" option must be a function. Received ${describe(onFailed)}`,
    )
  }
  const server = await listen(path, {
    mode: opts.mode ?? 0o600,
    replaceStale: opts.replaceStale,
    allowPeer,
    maxFds: 0,
    maxBytes: MAX_MESSAGE_BYTES,
    readAhead: 2,
  })
  return new ListenerHandoff(server, entries, timeout, onFailed)
}

/**
 * A handoff in progress, made by {@link serveListeners}: it waits for a
 * successor until one has taken the listeners or until `close()`.
 */
export class ListenerHandoff {
  /** The path successors connect to. */
  readonly path: string
  readonly #server: FdServer
  readonly #entries: Array<[string, HandoffSource]>
  readonly #timeout: number
  readonly #done: Promise<HandoffResult>
  #settle!: (result: HandoffResult | Error) => void
  #result: HandoffResult | undefined
  readonly #connections: ServeInTurn
  #closing = false

  /** @internal Made by `serveListeners()`. */
  constructor(
    server: FdServer,
    entries: Array<[string, HandoffSource]>,
    timeout: number,
    onFailed: ((error: FdpassError) => void) | undefined,
  ) {
    this.path = server.path
    this.#server = server
    this.#entries = entries
    this.#timeout = timeout
    this.#done = new Promise<HandoffResult>((resolve, reject) => {
      this.#settle = (value) => (value instanceof Error ? reject(value) : resolve(value))
    })
    this.#done.catch(() => undefined) // reported to taken() callers only
    // A failed attempt is reported and the next successor awaited; the first success ends it.
    this.#connections = new ServeInTurn(
      server,
      async (socket) => {
        const result = await this.#attempt(socket)
        this.#result = result
        this.#settle(result)
        return true
      },
      onFailed,
    )
  }

  /**
   * Resolves once a successor has received every listener and said it serves
   * them: stop accepting now. Rejects with `ERR_SOCKET_CLOSED` if the handoff
   * is closed first, or an `AbortError` when `signal` aborts.
   */
  taken(options?: TakenOptions): Promise<HandoffResult> {
    return untilAborted(this.#done, optionsObject(options, 'options').signal as AbortSignal | undefined)
  }

  /**
   * Stops waiting for a successor and removes the socket file. An attempt in
   * progress is cut off (the successor gets an error; the listeners stay
   * here). Pending `taken()` calls reject with `ERR_SOCKET_CLOSED`, unless
   * the handoff is already done.
   */
  async close(): Promise<void> {
    this.#closing = true
    this.#connections.stop()
    await this.#server.close()
    if (!this.#result)
      this.#settle(closedError('the listener handoff was closed before a successor took the listeners'))
  }

  /** Same as {@link ListenerHandoff.close}, for `await using` declarations. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  async #attempt(socket: FdSocket): Promise<HandoffResult> {
    const deadline = startDeadline(undefined, this.#timeout)
    try {
      const receive = async (type: string) => {
        let message
        try {
          message = await socket.receive({ signal: deadline.signal })
        } catch (err) {
          if (deadline.timedOut()) {
            throw timeoutError(
              'the successor did not take the listeners',
              this.#timeout,
              'it was given up; the listeners stay here',
            )
          }
          const code = (err as FdpassError).code
          if ((code === 'ERR_SOCKET_CLOSED' || code === 'ECONNRESET') && !this.#closing) throw gone(type)
          throw err
        }
        if (message.data.length === 0 && message.fds.length === 0) throw gone(type)
        return decode(message.data, message.fds.length, type, 'the successor')
      }
      await receive('take')
      // Looked up now: a listener closed since serveListeners() fails the attempt.
      const described: Described[] = this.#entries.map(([name, server]) => describeSource(name, server))
      await socket.send(encode('listeners', { listeners: described.map((d) => d.meta) }))
      for (let i = 0; i < described.length; i += FDS_PER_MESSAGE) {
        await socket.send(
          FDS_MESSAGE,
          described.slice(i, i + FDS_PER_MESSAGE).map((d) => d.fd),
        )
      }
      const ready = await receive('ready')
      const names = described.map((d) => d.meta.name)
      if (
        !Array.isArray(ready.names) ||
        ready.names.length !== names.length ||
        ready.names.some((n, i) => n !== names[i])
      ) {
        throw protocolError('the successor acknowledged other listeners than those sent')
      }
      // Its socket files serve the successor now: closing these servers must not remove them.
      for (const d of described) if (d.server instanceof FdServer) d.server[kKeepSocketFile]()
      const peer = socket.peerCredentials()
      // The handoff path is free before the successor hears 'done', so that
      // it can serve its own successor at the same path at once.
      await this.#server.close()
      await socket.send(encode('done')).catch(() => undefined) // the successor has them either way
      return { names, peer }
    } finally {
      deadline.dispose()
    }
  }
}
