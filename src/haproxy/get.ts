/**
 * `getHaproxySockets()`: takes the listening sockets of a running HAProxy
 * through its stats socket (`stats socket <path> expose-fd listeners`), as
 * `haproxy -x` does on a seamless reload. HAProxy is a peer like any other:
 * every count, length and fd is checked at every read.
 */
import { describe, makeError, type FdpassError } from '../errors'
import type { FdSocket } from '../fd-socket'
import { connect } from '../connect'
import { socketInfo, type SocketInfo } from '../socket-info'
import { closeQuietly } from '../internal/fd-release'
import { integerOption, optionsObject } from '../internal/validate'
import { abortedError, protocolError, startDeadline, timeoutError } from '../internal/deadline'
import {
  decodeEntry,
  GETSOCKS_COMMAND,
  HAPROXY_SOCKET_OPTIONS,
  MAX_ENTRY_BYTES,
  MAX_FDS_PER_READ,
  native32,
  readNative32,
} from './format'

/** One listening socket taken from HAProxy, with what HAProxy said about it. */
export interface HaproxySocket {
  /** The fd, now this process's: close it (or give it to a server) when done. */
  fd: number
  /** The network namespace HAProxy bound it in (`''` for the default one). */
  namespace: string
  /** The interface it is bound to (`bind … interface`), `''` for none. */
  interface: string
  /** HAProxy's option bits for it (see {@link HAPROXY_SOCKET_OPTIONS}). */
  options: number
  /** Whether it is a datagram (UDP / QUIC) socket (`options & DGRAM`). */
  dgram: boolean
  /** Whether it is an IPv6-only socket (`options & V6ONLY`). */
  v6only: boolean
  /** Whether it binds a foreign address (`options & FOREIGN`, `transparent`). */
  foreign: boolean
  /**
   * What the socket is, asked of the fd itself ({@link socketInfo}): family,
   * type, whether it listens, and its local address (HAProxy's metadata has
   * no address).
   */
  info: SocketInfo
}

/** Options of {@link getHaproxySockets}. */
export interface GetHaproxySocketsOptions {
  /** Aborts the transfer (rejects with an `AbortError`; every fd received is closed). */
  signal?: AbortSignal
  /** Time limit for the whole transfer, in ms (0 to 2^31 - 1, default 10000; 0: none). Rejects with `ETIMEDOUT`. */
  timeout?: number
  /** The most sockets accepted (1 to 65536, default 4096): a larger announced count is refused. */
  maxSockets?: number
}

const GET_HAPROXY_TIMEOUT = 10000
const DEFAULT_MAX_SOCKETS = 4096

/** What the start of a refusal looks like, for the error message (HAProxy answers commands it refuses with text). */
function asText(buf: Buffer): string | undefined {
  const text = buf.toString('latin1', 0, Math.min(buf.length, 80))
  return /^[\x20-\x7e\r\n\t]+$/.test(text) ? text.trim() : undefined
}

/**
 * Connects to a running HAProxy's stats socket at `statsSocketPath`, sends
 * `_getsocks`, and receives every listening socket HAProxy has, as
 * `haproxy -x` does: fds with HAProxy's metadata (namespace, interface,
 * option bits), in HAProxy's order. The list includes the stats socket
 * itself. HAProxy keeps its own copies and keeps serving.
 *
 * The stats socket must be declared with `expose-fd listeners` (else HAProxy
 * closes the connection at once: `ERR_FDPASS_PROTOCOL` saying so). HAProxy's
 * metadata has no address: each socket's `info` (`socketInfo`) has it.
 *
 * Rejects with `ERR_FDPASS_PROTOCOL` when the peer breaks the format (a count
 * over `maxSockets`, more fds or bytes than announced, metadata without its
 * fd, a transfer cut short), `ERR_FDS_TRUNCATED` when this process could not
 * receive every fd (its fd limit: EMFILE), `ENOENT` / `ECONNREFUSED`,
 * `ETIMEDOUT`, or an `AbortError`; every fd received is closed first. A
 * count of 0 gives `[]`.
 *
 * @example
 * const sockets = await getHaproxySockets('/run/haproxy/admin.sock')
 */
export async function getHaproxySockets(
  statsSocketPath: string,
  options?: GetHaproxySocketsOptions,
): Promise<HaproxySocket[]> {
  const opts = optionsObject(options, 'options')
  const timeout = integerOption(opts.timeout, 'timeout', 0, 2 ** 31 - 1, GET_HAPROXY_TIMEOUT)
  const maxSockets = integerOption(opts.maxSockets, 'maxSockets', 1, 65536, DEFAULT_MAX_SOCKETS)
  const signal = opts.signal as AbortSignal | undefined
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "signal" option must be an AbortSignal. Received ${describe(signal)}`,
    )
  }
  if (signal?.aborted) throw abortedError(signal)
  const socket = await connect(statsSocketPath, {
    framing: false,
    maxFds: MAX_FDS_PER_READ,
    maxBytes: 64 * 1024,
    readAhead: 1,
    maxQueuedFds: MAX_FDS_PER_READ,
  })
  const deadline = startDeadline(signal, timeout)
  const fds: number[] = []
  try {
    await socket.send(GETSOCKS_COMMAND)
    return await receiveAll(socket, deadline.signal, maxSockets, fds)
  } catch (err) {
    closeQuietly(fds)
    if (deadline.timedOut()) {
      throw timeoutError('HAProxy did not hand over its sockets', timeout, 'is this its stats socket?')
    }
    if (signal?.aborted) throw abortedError(signal)
    const error = err as FdpassError
    if (error.code === 'ERR_FDS_TRUNCATED') {
      error.message = `${error.message}: this process could not receive every socket, most likely because it reached its fd limit (EMFILE: raise ulimit -n); every fd received was closed`
    }
    throw error
  } finally {
    deadline.dispose()
    socket.close()
  }
}

/** socketInfo of a received fd; one that is not a socket breaks the protocol. */
function describeSocket(fd: number): SocketInfo {
  try {
    return socketInfo(fd)
  } catch (err) {
    throw protocolError(`HAProxy sent an fd that is not a socket (${(err as FdpassError).code})`)
  }
}

/** The transfer: reads until `count` fds and entries arrived; `fds` collects every fd received. */
async function receiveAll(
  socket: FdSocket,
  signal: AbortSignal,
  maxSockets: number,
  fds: number[],
): Promise<HaproxySocket[]> {
  let pending: Buffer = Buffer.alloc(0)
  let count: number | undefined
  const entries: Array<Omit<HaproxySocket, 'fd' | 'info'>> = []
  for (;;) {
    let data: Buffer
    let got: number[]
    try {
      ;({ data, fds: got } = await socket.receive({ signal }))
    } catch (err) {
      // A reset (the peer closed with our acks unread) ends the stream as a close does.
      const code = (err as FdpassError).code
      if (code !== 'ERR_SOCKET_CLOSED' && code !== 'ECONNRESET') throw err
      data = Buffer.alloc(0)
      got = []
    }
    fds.push(...got)
    if (data.length === 0 && got.length === 0) {
      // End of stream.
      // Even a HAProxy with no frontend has its stats socket to hand over:
      // closing without a count is how it refuses a socket without expose-fd.
      if (count === undefined && pending.length === 0) {
        throw protocolError(
          'HAProxy closed the connection without sending a socket: is the stats socket declared with "expose-fd listeners"?',
        )
      }
      if (count === undefined) throw protocolError('HAProxy closed the connection in the middle of the fd count')
      throw protocolError(
        `HAProxy closed the connection after ${fds.length} of ${count} fds and ${entries.length} metadata entries`,
      )
    }
    pending = pending.length === 0 ? data : Buffer.concat([pending, data])
    if (count === undefined) {
      if (pending.length < 4) {
        if (fds.length > 0) throw protocolError('HAProxy sent fds before its fd count')
        continue
      }
      count = readNative32(pending, 0)
      if (count > maxSockets) {
        const text = asText(pending)
        throw protocolError(
          text !== undefined
            ? `HAProxy refused _getsocks: ${JSON.stringify(text)} (is the stats socket declared with "expose-fd listeners"?)`
            : `HAProxy announced ${count} sockets, more than maxSockets (${maxSockets})`,
        )
      }
      pending = pending.subarray(4)
      if (count === 0) {
        if (pending.length > 0 || fds.length > 0) throw protocolError('HAProxy announced no sockets but sent more')
        return []
      }
    }
    if (fds.length > count) throw protocolError(`HAProxy sent ${fds.length} fds, more than the ${count} it announced`)
    if (pending.length > (count - entries.length) * MAX_ENTRY_BYTES) {
      throw protocolError('HAProxy sent more metadata than its announced sockets can have')
    }
    for (let entry = decodeEntry(pending, 0); entry !== undefined; entry = decodeEntry(pending, 0)) {
      if (entries.length >= fds.length) throw protocolError('HAProxy sent metadata for a socket whose fd did not come')
      entries.push({
        namespace: entry.namespace,
        interface: entry.iface,
        options: entry.options,
        dgram: (entry.options & HAPROXY_SOCKET_OPTIONS.DGRAM) !== 0,
        v6only: (entry.options & HAPROXY_SOCKET_OPTIONS.V6ONLY) !== 0,
        foreign: (entry.options & HAPROXY_SOCKET_OPTIONS.FOREIGN) !== 0,
      })
      pending = pending.subarray(entry.next)
    }
    // HAProxy waits for an ack after each full batch; `haproxy -x` acks every read.
    if (got.length > 0) await socket.send(native32(fds.length)).catch(() => undefined)
    if (entries.length === count) {
      if (pending.length > 0 || fds.length !== count)
        throw protocolError(`HAProxy sent more than the ${count} sockets it announced`)
      return entries.map((entry, i) => ({ fd: fds[i]!, ...entry, info: describeSocket(fds[i]!) }))
    }
  }
}
