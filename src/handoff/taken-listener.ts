/**
 * One listener a new process received through `takeListeners()`, and the
 * ways to adopt it: a `net.Server`, a `dgram.Socket`, an `FdServer`, or the
 * bare fd.
 */
import type * as dgram from 'node:dgram'
import * as net from 'node:net'

import { describe, makeError } from '../errors'
import { FdServer, type ServerOptions } from '../fd-server'
import { closeQuietly } from '../internal/fd-release'
import { protocolError } from '../internal/deadline'
import { socketInfo, type SocketInfo } from '../socket-info'
import type { ListenerKind, ListenerMetadata } from './protocol'

/** What each kind must be: socket families and types, and whether it listens. */
const EXPECTED: Partial<Record<ListenerKind, { families: string[]; types: string[]; listening: boolean | undefined }>> =
  {
    tcp: { families: ['inet', 'inet6'], types: ['stream'], listening: true },
    udp: { families: ['inet', 'inet6'], types: ['dgram'], listening: undefined },
    unix: { families: ['unix'], types: ['stream', 'seqpacket'], listening: true },
    fdpass: { families: ['unix'], types: ['stream', 'seqpacket'], listening: true },
  }

/**
 * Asks a received fd what it is ({@link socketInfo}) and checks that it is
 * what the old process said: a received fd that is not a socket, or not of
 * its kind, breaks the protocol.
 */
export function describeListener(meta: ListenerMetadata, fd: number): SocketInfo {
  let info: SocketInfo
  try {
    info = socketInfo(fd)
  } catch (err) {
    throw protocolError(`listener '${meta.name}' is not a socket (${(err as { code?: string }).code})`)
  }
  const expected = EXPECTED[meta.kind]
  if (
    expected &&
    (!expected.families.includes(info.family) ||
      !expected.types.includes(info.type) ||
      (expected.listening !== undefined && info.listening !== expected.listening))
  ) {
    throw protocolError(
      `listener '${meta.name}' is said to be ${meta.kind} but is a${info.listening ? ' listening' : ''} ${info.family} ${info.type} socket`,
    )
  }
  return info
}

/**
 * One listener received from the old process. Its fd is owned here until
 * adopted (`listen`, `bind`, `toFdServer`) or taken (`take`); `close()`
 * closes it otherwise.
 */
export class TakenListener {
  /** The name the old process gave it. */
  readonly name: string
  /** What it was in the old process (see {@link ListenerMetadata.kind}). */
  readonly kind: ListenerKind
  /** What the old process said about it (address, port, path). */
  readonly metadata: Readonly<ListenerMetadata>
  /** What the received fd is, asked of the fd itself ({@link socketInfo}), and checked against `kind`. */
  readonly info: SocketInfo
  #fd: number

  /** @internal Made by `takeListeners()`. */
  constructor(metadata: ListenerMetadata, fd: number, info: SocketInfo) {
    this.info = info
    this.name = metadata.name
    this.kind = metadata.kind
    this.metadata = Object.freeze({ ...metadata })
    this.#fd = fd
  }

  /** The fd, or -1 once adopted, taken or closed. */
  get fd(): number {
    return this.#fd
  }

  /**
   * Gives the fd to the caller, who must close it (or give it to a server).
   * Throws `ERR_INVALID_STATE` once adopted, taken or closed (as `listen`,
   * `bind` and `toFdServer` do).
   */
  take(): number {
    const fd = this.#owned('take')
    this.#fd = -1
    return fd
  }

  /**
   * Resumes serving on `server` (a `net.Server`, `http.Server` …), with
   * `server.listen({ fd })`: for a `'tcp'` or `'unix'` listener (or an `'fd'`
   * one that is a listening stream socket). The server owns the fd from now
   * on. Resolves on `'listening'`; rejects with the server's error (the fd is
   * then closed by Node).
   */
  listen(server: net.Server): Promise<void> {
    if (!(server instanceof net.Server)) {
      throw makeError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "server" argument must be a net.Server. Received ${describe(server)}`,
      )
    }
    this.#expect(['tcp', 'unix', 'fd'], 'listen(server)')
    const fd = this.take()
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      server.once('error', onError)
      server.listen({ fd }, () => {
        server.off('error', onError)
        resolve()
      })
    })
  }

  /**
   * Resumes receiving on `socket` (a new, unbound `dgram.Socket` of the
   * listener's family), with `socket.bind({ fd })`: for a `'udp'` listener.
   * The socket owns the fd from now on.
   */
  bind(socket: dgram.Socket): Promise<void> {
    this.#expect(['udp', 'fd'], 'bind(socket)')
    const fd = this.take()
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      socket.once('error', onError)
      socket.bind({ fd }, () => {
        socket.off('error', onError)
        resolve()
      })
    })
  }

  /**
   * Adopts an `'fdpass'` (or `'unix'`) listener as an fdpass `FdServer`
   * (`FdServer.from`), which owns the fd from now on. Its socket file is the
   * old process's, left in place when either server closes.
   */
  toFdServer(options?: ServerOptions): FdServer {
    this.#expect(['fdpass', 'unix', 'fd'], 'toFdServer()')
    const server = FdServer.from(this.#owned('toFdServer'), options) // throws with the fd still ours
    this.#fd = -1
    return server
  }

  /** Closes the fd unless it was adopted or taken. */
  close(): void {
    if (this.#fd < 0) return
    closeQuietly([this.#fd])
    this.#fd = -1
  }

  #owned(what: string): number {
    if (this.#fd < 0) {
      throw makeError(
        Error,
        'ERR_INVALID_STATE',
        `${what}: listener '${this.name}' was already adopted, taken or closed`,
      )
    }
    return this.#fd
  }

  #expect(kinds: ListenerKind[], what: string): void {
    if (!kinds.includes(this.kind)) {
      throw makeError(
        TypeError,
        'ERR_INVALID_ARG_VALUE',
        `${what} does not fit listener '${this.name}', a ${this.kind} listener`,
      )
    }
  }
}
