/**
 * `serveHaproxySockets()`: serves Node's listening sockets in HAProxy's
 * `_getsocks` format, so that `haproxy -x <path>` starts on them.
 */
import * as dgram from 'node:dgram'
import * as net from 'node:net'

import { describe, makeError, type FdpassError } from '../errors'
import { FdServer, type PeerCheck } from '../fd-server'
import type { FdSocket, PeerCredentials } from '../fd-socket'
import { listen } from '../connect'
import { toFd } from '../fd-like'
import { integerOption, optionsObject, validateFd } from '../internal/validate'
import { protocolError, startDeadline, timeoutError, untilAborted } from '../internal/deadline'
import { ServeInTurn } from '../internal/serve-in-turn'
import { closedError } from '../internal/waiters'
import { encodeEntry, GETSOCKS_COMMAND, HAPROXY_FDS_PER_BATCH, HAPROXY_SOCKET_OPTIONS, native32 } from './format'

/** A socket with the metadata HAProxy matches it by (besides its address, which HAProxy reads itself). */
export interface HaproxySocketEntry {
  /** A listening `net.Server`, a bound `dgram.Socket`, or an fd number. */
  socket: net.Server | dgram.Socket | number
  /** Network namespace name (default `''`, at most 255 bytes): as in HAProxy's `bind … namespace`. */
  namespace?: string
  /** Interface name (default `''`, at most 255 bytes): as in HAProxy's `bind … interface`. */
  interface?: string
  /**
   * HAProxy's option bits ({@link HAPROXY_SOCKET_OPTIONS}); default `DGRAM`
   * for a `dgram.Socket`, else 0. Set `V6ONLY` for an IPv6 socket bound
   * with `ipv6Only`, as HAProxy matches on it.
   */
  options?: number
}

/** What {@link serveHaproxySockets} serves: a socket, or one with its HAProxy metadata. */
export type HaproxySocketSource = net.Server | dgram.Socket | number | HaproxySocketEntry

/** Options of {@link serveHaproxySockets}. */
export interface ServeHaproxySocketsOptions {
  /** Permissions of the socket file (0 to 0o777, default `0o600`). */
  mode?: number
  /** Replace a stale socket file at the path (see `listen()`). */
  replaceStale?: boolean
  /** Which connecting processes may take the sockets. Default: the same user, or root. */
  allowPeer?: PeerCheck
  /**
   * How long a client has for each step (its command, each ack), in ms
   * (0 to 2^31 - 1, default 5000; 0: no limit; HAProxy itself waits 1 s for an ack).
   */
  timeout?: number
  /**
   * Called with the error of each failed transfer (serving goes on):
   * `ERR_FDPASS_PROTOCOL` for a client that did not send `_getsocks`,
   * `ERR_SERVER_NOT_RUNNING` for a socket closed since, `ECONNRESET`,
   * `ETIMEDOUT`.
   */
  onFailedAttempt?: (error: FdpassError) => void
}

/** What {@link HaproxySocketServer.taken} resolves to. */
export interface HaproxyTransfer {
  /** How many sockets were handed over. */
  count: number
  /** The credentials of the process that took them (`haproxy -x`). */
  peer: PeerCredentials
}

const SERVE_HAPROXY_TIMEOUT = 5000
const MAX_COMMAND_BYTES = 64

interface Prepared {
  source: net.Server | dgram.Socket | number
  entry: Buffer
}

function sameUserOrRoot(credentials: PeerCredentials): boolean {
  return credentials.uid === process.getuid?.() || credentials.uid === 0
}

function metadataString(value: unknown, name: string): string {
  if (value === undefined) return ''
  if (typeof value !== 'string' || Buffer.byteLength(value, 'utf8') > 255) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_VALUE',
      `The "${name}" must be a string of at most 255 bytes. Received ${describe(value)}`,
    )
  }
  return value
}

/** Checks the sockets argument and prepares each entry's metadata. */
function prepare(sockets: unknown): Prepared[] {
  if (!Array.isArray(sockets) || sockets.length === 0) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "sockets" argument must be a non-empty array. Received ${describe(sockets)}`,
    )
  }
  return sockets.map((item: unknown, i): Prepared => {
    const entry: HaproxySocketEntry =
      typeof item === 'number' || item instanceof net.Server || item instanceof dgram.Socket
        ? { socket: item }
        : (item as HaproxySocketEntry)
    if (entry === null || typeof entry !== 'object') {
      throw makeError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "sockets[${i}]" element must be a socket or { socket }. Received ${describe(item)}`,
      )
    }
    const source = entry.socket
    if (typeof source === 'number') validateFd(source, `sockets[${i}]`)
    else if (!(source instanceof net.Server || source instanceof dgram.Socket)) {
      throw makeError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "sockets[${i}].socket" must be a net.Server, a dgram.Socket or an fd number. Received ${describe(source)}`,
      )
    }
    const ns = metadataString(entry.namespace, `sockets[${i}].namespace`)
    const iface = metadataString(entry.interface, `sockets[${i}].interface`)
    const fallback = source instanceof dgram.Socket ? HAPROXY_SOCKET_OPTIONS.DGRAM : 0
    const options = integerOption(entry.options, `sockets[${i}].options`, 0, 0xffffffff, fallback)
    return { source, entry: encodeEntry(ns, iface, options) }
  })
}

/**
 * Serves `sockets` at `path` in HAProxy's `_getsocks` format, so that
 * `haproxy -x <path> -f <cfg>` takes them: HAProxy reuses a received socket
 * for each `bind` line whose address (which it reads with `getsockname`),
 * namespace, interface and options match. Resolves once listening; serves
 * any number of clients until `close()`. The sockets stay this process's;
 * stop accepting on them once {@link HaproxySocketServer.taken} resolves.
 *
 * Each client must send `_getsocks\n` (anything else is answered
 * `Unknown command.` and closed); then the fd count, then batches of at most
 * 252 fds, each full batch waiting for the client's 4-byte ack.
 *
 * @example
 * const haproxy = await serveHaproxySockets('/run/app/haproxy.sock', [server])
 * // haproxy -x /run/app/haproxy.sock -f haproxy.cfg
 * await haproxy.taken()
 * server.close()
 */
export async function serveHaproxySockets(
  path: string,
  sockets: readonly HaproxySocketSource[],
  options?: ServeHaproxySocketsOptions,
): Promise<HaproxySocketServer> {
  const opts = optionsObject(options, 'options')
  const prepared = prepare(sockets)
  const timeout = integerOption(opts.timeout, 'timeout', 0, 2 ** 31 - 1, SERVE_HAPROXY_TIMEOUT)
  const allowPeer = opts.allowPeer ?? sameUserOrRoot
  if (typeof allowPeer !== 'function')
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "allowPeer" option must be a function')
  const onFailed = opts.onFailedAttempt
  if (onFailed !== undefined && typeof onFailed !== 'function') {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "onFailedAttempt" option must be a function')
  }
  const server = await listen(path, {
    framing: false,
    mode: opts.mode ?? 0o600,
    replaceStale: opts.replaceStale,
    allowPeer,
    maxFds: 0,
    maxBytes: 4096,
    readAhead: 2,
  })
  return new HaproxySocketServer(server, prepared, timeout, onFailed)
}

/** A running {@link serveHaproxySockets} server. */
export class HaproxySocketServer {
  /** The path `haproxy -x` connects to. */
  readonly path: string
  readonly #server: FdServer
  readonly #prepared: Prepared[]
  readonly #timeout: number
  readonly #done: Promise<HaproxyTransfer>
  #settle!: (value: HaproxyTransfer | Error) => void
  #settled = false
  readonly #connections: ServeInTurn

  /** @internal Made by `serveHaproxySockets()`. */
  constructor(
    server: FdServer,
    prepared: Prepared[],
    timeout: number,
    onFailed: ((error: FdpassError) => void) | undefined,
  ) {
    this.path = server.path
    this.#server = server
    this.#prepared = prepared
    this.#timeout = timeout
    this.#done = new Promise<HaproxyTransfer>((resolve, reject) => {
      this.#settle = (value) => {
        if (this.#settled) return
        this.#settled = true
        if (value instanceof Error) reject(value)
        else resolve(value)
      }
    })
    this.#done.catch(() => undefined)
    // Every client is served in turn (haproxy -x may come again); a failed transfer is reported.
    this.#connections = new ServeInTurn(
      server,
      async (socket) => {
        const count = await this.#transfer(socket)
        this.#settle({ count, peer: socket.peerCredentials() })
        return false
      },
      onFailed,
    )
  }

  /**
   * Resolves once a client has received every socket (the first complete
   * transfer). Rejects with `ERR_SOCKET_CLOSED` if the server is closed
   * first, or an `AbortError` when `signal` aborts.
   */
  taken(options?: { signal?: AbortSignal }): Promise<HaproxyTransfer> {
    return untilAborted(this.#done, optionsObject(options, 'options').signal as AbortSignal | undefined)
  }

  /** Stops serving and removes the socket file; a transfer in progress is cut off. */
  async close(): Promise<void> {
    this.#connections.stop()
    await this.#server.close()
    this.#settle(closedError('the HAProxy socket server was closed before a client took the sockets'))
  }

  /** Same as {@link HaproxySocketServer.close}, for `await using` declarations. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /** Reads until `want` bytes arrived in all (or the end of the stream); returns them. */
  async #read(socket: FdSocket, want: number, what: string, stopAt?: number): Promise<Buffer> {
    const deadline = startDeadline(undefined, this.#timeout)
    let got: Buffer = Buffer.alloc(0)
    try {
      while (got.length < want && (stopAt === undefined || !got.includes(stopAt))) {
        let data: Buffer
        try {
          ;({ data } = await socket.receive({ signal: deadline.signal }))
        } catch (err) {
          if (deadline.timedOut())
            throw timeoutError(`the client sent no ${what}`, this.#timeout, 'the transfer was given up')
          if ((err as FdpassError).code === 'ERR_SOCKET_CLOSED') return got
          throw err
        }
        if (data.length === 0) return got
        got = Buffer.concat([got, data])
      }
      return got
    } finally {
      deadline.dispose()
    }
  }

  async #transfer(socket: FdSocket): Promise<number> {
    const command = await this.#read(socket, MAX_COMMAND_BYTES, 'command', 0x0a)
    if (command.toString('latin1') !== GETSOCKS_COMMAND) {
      await socket.send('Unknown command.\n').catch(() => undefined)
      throw protocolError(
        `the client sent ${JSON.stringify(command.toString('latin1').slice(0, MAX_COMMAND_BYTES))}, not _getsocks`,
      )
    }
    // Looked up now: a socket closed since serveHaproxySockets() fails the transfer.
    const fds = this.#prepared.map((p, i) => {
      try {
        return toFd(p.source, `sockets[${i}]`)
      } catch {
        throw makeError(
          Error,
          'ERR_SERVER_NOT_RUNNING',
          `sockets[${i}] is not listening (or bound) any more: nothing to hand over`,
        )
      }
    })
    await socket.send(native32(fds.length))
    for (let i = 0; i < fds.length; i += HAPROXY_FDS_PER_BATCH) {
      const batch = fds.slice(i, i + HAPROXY_FDS_PER_BATCH)
      const metadata = Buffer.concat(this.#prepared.slice(i, i + HAPROXY_FDS_PER_BATCH).map((p) => p.entry))
      await socket.send(metadata, batch)
      if (batch.length === HAPROXY_FDS_PER_BATCH) {
        const ack = await this.#read(socket, 4, 'ack')
        if (ack.length < 4)
          throw makeError(
            Error,
            'ECONNRESET',
            `the client went away after ${i + batch.length} of ${fds.length} sockets`,
          )
      }
    }
    return fds.length
  }
}
