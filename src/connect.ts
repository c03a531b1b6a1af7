/**
 * Named sockets: `connect()`, `listen()` and `bind()` (a datagram socket that
 * receives from many senders).
 */
import { Buffer } from 'node:buffer'

import { describe, makeError } from './errors'
import { FdServer, type PeerCheck } from './fd-server'
import { FdSocket } from './fd-socket'
import { native } from './internal/native'
import { assertEventLoopSockets } from './internal/runtime'
import { placeSocket, unlinkIfOwned, type OwnedPath } from './internal/socket-file'
import { resolveOptions } from './internal/socket-options'
import { kAdopt } from './internal/symbols'
import { integerOption, optionsObject, validateSocketType } from './internal/validate'
import type { SocketType } from './raw'
import type { SocketOptions } from './socket-types'

/** Options of {@link connect}. */
export interface ConnectOptions extends SocketOptions {
  /** The socket type (default `'stream'`). */
  type?: SocketType
}

/** Options of {@link listen}. */
export interface ListenOptions extends SocketOptions {
  /** `'stream'` (default) or `'seqpacket'` (Linux only). */
  type?: 'stream' | 'seqpacket'
  /**
   * The length of the queue of pending connections (default 511, as Node's
   * `net`): any integer from 0 to 2^31 - 1; the kernel caps it at its own
   * maximum (Linux: `net.core.somaxconn`, macOS: `kern.ipc.somaxconn`).
   */
  backlog?: number
  /**
   * Permissions of the socket file (0 to 0o777), e.g. `0o600`, set before
   * anyone can connect: on Linux the file has them from its creation on (less
   * the umask's bits, added right after, before listening); on macOS they are
   * set before the socket listens.
   */
  mode?: number
  /**
   * When a socket file already exists at the path and nobody accepts
   * connections on it (its server died without removing it), remove it and
   * take the path. Without this option such a file gives `EADDRINUSE`. A live
   * server's socket, or a file that is not a socket, is never removed.
   * Processes racing for the path take turns (a lock on `<path>.lock`,
   * removed when done): one wins, the others get `EADDRINUSE`.
   */
  replaceStale?: boolean
  /**
   * Checks each connecting peer before it is handed out: connections for
   * which it returns anything but `true` are closed before anything is read
   * from them. Use the uid (and gid), not the pid, to decide. It decides
   * synchronously: a Promise (from an async function) or a throw refuses
   * the peer. It may close the server; no connection is handed out after
   * that.
   */
  allowPeer?: PeerCheck
}

/** Options of {@link bind}. */
export interface BindOptions extends SocketOptions {
  /** Permissions of the socket file (see {@link ListenOptions.mode}). */
  mode?: number
  /** See {@link ListenOptions.replaceStale}. */
  replaceStale?: boolean
}

function validatePath(value: unknown): Buffer {
  if (typeof value !== 'string') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "path" argument must be of type string. Received ${describe(value)}`,
    )
  }
  if (value.length === 0) throw makeError(TypeError, 'ERR_INVALID_ARG_VALUE', 'The "path" argument must not be empty')
  return Buffer.from(value, 'utf8')
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Connects to the Unix domain socket at `path` (a leading `'\0'` names a
 * Linux abstract socket, matched with its exact length). Rejects with
 * `ENOENT` when no socket exists there, `ECONNREFUSED` when nobody listens,
 * `ENAMETOOLONG` when the path does not fit in `sun_path`.
 */
export async function connect(path: string, options?: ConnectOptions): Promise<FdSocket> {
  assertEventLoopSockets('connect')
  const opts = optionsObject(options, 'options')
  const type = validateSocketType(opts.type)
  const resolved = resolveOptions(type, opts)
  const address = validatePath(path)
  const fd = native.unixSocket(type)
  try {
    // A Unix connect completes at once, or says EAGAIN while the listener's
    // backlog is full: retry with a growing delay, without blocking the loop.
    for (let delay = 1; !native.connectUnix(fd, address); delay = Math.min(delay * 2, 50)) await sleep(delay)
  } catch (err) {
    native.closeFds([fd])
    throw err
  }
  // From here the socket object owns the fd, failure included.
  return FdSocket[kAdopt](fd, type, resolved)
}

/**
 * Listens on `path` and resolves to an {@link FdServer}. Rejects with
 * `EADDRINUSE` when a server already listens there (or a stale socket file is
 * in the way: see {@link ListenOptions.replaceStale}). `close()` removes the
 * socket file.
 */
export async function listen(path: string, options?: ListenOptions): Promise<FdServer> {
  assertEventLoopSockets('listen')
  const opts = optionsObject(options, 'options')
  const type = validateSocketType(opts.type)
  if (type === 'dgram') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_VALUE',
      "listen() takes 'stream' or 'seqpacket'; use bind() for 'dgram'",
    )
  }
  const resolved = resolveOptions(type, opts)
  const backlog = integerOption(opts.backlog, 'backlog', 0, 2 ** 31 - 1, 511)
  const allowPeer = opts.allowPeer
  if (allowPeer !== undefined && typeof allowPeer !== 'function') {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "allowPeer" option must be a function')
  }
  const socketPath = validPath(path)
  const mode = modeOption(opts.mode)
  const fd = native.unixSocket(type)
  let owned: OwnedPath | undefined
  try {
    owned = await placeSocket({ fd, path: socketPath, type, mode, replaceStale: opts.replaceStale === true, backlog })
  } catch (err) {
    native.closeFds([fd])
    throw err
  }
  // From here the server object owns the fd, failure included.
  return new FdServer(kAdopt, fd, path, type, resolved, owned, allowPeer)
}

/**
 * Binds a datagram socket to `path` that receives messages (with fds) from
 * any number of senders, as NOTIFY_SOCKET-style daemons do; senders use
 * `connect(path, { type: 'dgram' })`. `close()` removes the socket file.
 */
export async function bind(path: string, options?: BindOptions): Promise<FdSocket> {
  assertEventLoopSockets('bind')
  const opts = optionsObject(options, 'options')
  const resolved = resolveOptions('dgram', opts)
  const socketPath = validPath(path)
  const mode = modeOption(opts.mode)
  const fd = native.unixSocket('dgram')
  let owned: OwnedPath | undefined
  try {
    owned = await placeSocket({
      fd,
      path: socketPath,
      type: 'dgram',
      mode,
      replaceStale: opts.replaceStale === true,
      backlog: undefined,
    })
  } catch (err) {
    native.closeFds([fd])
    throw err
  }
  const own = owned
  return FdSocket[kAdopt](fd, 'dgram', resolved, own ? () => unlinkIfOwned(own) : undefined)
}

/** Checks the `mode` option. */
function modeOption(mode: unknown): number | undefined {
  return mode === undefined ? undefined : integerOption(mode, 'mode', 0, 0o777, 0)
}

/** Checks a path argument and gives it back. */
function validPath(value: unknown): string {
  validatePath(value)
  return value as string
}
