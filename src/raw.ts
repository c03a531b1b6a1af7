/**
 * The raw, synchronous API: plain fd numbers in and out, one sendmsg or
 * recvmsg per call, in the spirit of Python's `socket.send_fds` /
 * `socket.recv_fds`.
 */
import { Buffer } from 'node:buffer'
import { describe, makeError } from './errors'
import {
  copyToScratch,
  enterStaging,
  isFdNumber,
  lean,
  leaveStaging,
  scratchData,
  scratchFds,
  scratchInts,
  SMALL_COPY,
  stagedToScratch,
} from './lean'
import { native } from './native'
// Straight from the generated module, not re-exported through another:
// a re-export compiles to a getter, on the per-message path.
import {
  DEFAULT_MAX_BYTES as NATIVE_DEFAULT_MAX_BYTES,
  MAX_FDS_PER_MESSAGE,
  SCRATCH_DATA_BYTES,
  SCRATCH_FD_SLOTS,
} from './internal/native-constants'
import { emptyDataError, integerOption, optionsObject, toBytes, validateFd, validateFdList } from './validate'

/** The kind of a Unix domain socket. `'seqpacket'` exists on Linux only. */
export type SocketType = 'stream' | 'seqpacket' | 'dgram'

/** What an fd refers to, as reported by `fstat`. */
export type FdKind =
  | 'file'
  | 'directory'
  | 'socket'
  | 'fifo'
  | 'character-device'
  | 'block-device'
  | 'symlink'
  | 'unknown'

/** Options of {@link recvFds}. */
export interface RecvFdsOptions {
  /** The largest message accepted, in bytes (1 to 2^31 - 1, default 65536). A longer datagram or seqpacket message throws `ERR_MESSAGE_TRUNCATED`; a stream delivers the rest on the next call. */
  maxBytes?: number
  /** The most fds accepted with one message (0 to 253, default 253). More throws `ERR_FDS_TRUNCATED` after closing them all. */
  maxFds?: number
}

/** One received message and the fds that came with it. */
export interface RecvFdsResult {
  /** The bytes received. Empty with no fds means the peer closed a stream socket (end of stream). */
  data: Buffer
  /** The fds received, in the order they were sent. They are yours to close ({@link closeFds}). */
  fds: number[]
}

/** Default of {@link RecvFdsOptions.maxBytes}. */
export const DEFAULT_MAX_BYTES: number = NATIVE_DEFAULT_MAX_BYTES

const MAX_BYTES_LIMIT = 2 ** 31 - 1

/** Checks a socket type argument; `'stream'` when absent. */
export function validateSocketType(type: unknown, name = 'type'): SocketType {
  if (type === undefined) return 'stream'
  if (type === 'stream' || type === 'seqpacket' || type === 'dgram') return type
  throw makeError(
    TypeError,
    'ERR_INVALID_ARG_VALUE',
    `The "${name}" argument must be 'stream', 'seqpacket' or 'dgram'. Received ${describe(type)}`,
  )
}

/**
 * Creates a connected pair of `AF_UNIX` sockets (`socketpair(2)`), default
 * `'stream'`. Both ends are blocking and close-on-exec. Close them with
 * {@link closeFds} or `fs.closeSync`.
 *
 * @example
 * const [a, b] = socketPair('seqpacket')
 */
export function socketPair(type?: SocketType): [number, number] {
  const pair = native.socketPair(validateSocketType(type))
  return [pair[0] as number, pair[1] as number]
}

/**
 * Sends `data` with `fds` attached (one `sendmsg` with one `SCM_RIGHTS`
 * message) and returns the bytes sent.
 *
 * The kernel takes its own reference to each fd: you may close yours as soon
 * as this returns. Data must not be empty when fds are passed. At most 253 fds
 * (`ERR_TOO_MANY_FDS`). Never raises SIGPIPE: a closed peer throws `EPIPE`.
 * On a non-blocking socket whose buffer is full it throws `EAGAIN`.
 *
 * On a stream socket the count may be smaller than `data` (a partial send on
 * a non-blocking socket): the fds went with the first byte, so send the rest
 * *without* fds.
 *
 * @example
 * const n = sendFds(sock, 'x', [fs.openSync('file.txt', 'r')])
 */
export function sendFds(socket: number, data: Uint8Array | string, fds?: readonly number[]): number {
  validateFd(socket, 'socket')
  return sendOn(socket, data, fds, true)
}

/**
 * `sendFds` on a checked socket number. `checkUnix` false skips the per-send
 * `AF_UNIX` check, for a socket `SyncSocket` checked when it took ownership.
 */
export function sendOn(
  socket: number,
  data: Uint8Array | string,
  fds: readonly number[] | undefined,
  checkUnix: boolean,
  type?: SocketType,
): number {
  const bytes = toBytes(data, 'data')
  let count = 0
  if (fds !== undefined) {
    if (!Array.isArray(fds)) validateFdList(fds, 'fds') // throws the usual TypeError
    count = fds.length // read once: a Proxy could answer differently each time
    if (count > MAX_FDS_PER_MESSAGE) validateFdList(fds, 'fds') // throws ERR_TOO_MANY_FDS
    // Each element is read once, validated and staged (see enterStaging).
    const staged = enterStaging()
    try {
      for (let i = 0; i < count; i++) {
        const fd: unknown = fds[i]
        // The element's name is built only for the error message.
        if (!isFdNumber(fd)) validateFd(fd, `fds[${i}]`)
        staged[i] = fd as number
      }
      stagedToScratch(staged, count)
    } finally {
      leaveStaging()
    }
  }
  if (count > 0 && bytes.length === 0) throw emptyDataError(type)
  scratchInts[0] = socket
  if (bytes.length > SMALL_COPY) {
    scratchInts[1] = count
    if (checkUnix) lean.sendFds(bytes)
    else lean.sendOwned(bytes)
  } else {
    scratchInts[1] = copyToScratch(bytes)
    scratchInts[2] = count
    if (checkUnix) lean.sendScratch()
    else lean.sendOwnedScratch()
  }
  return scratchInts[0]!
}

/**
 * Receives one message (one `recvmsg`) and the fds that came with it. Blocks
 * on a blocking socket; on a non-blocking one with nothing queued, throws
 * `EAGAIN`. Interrupted calls (EINTR) are retried.
 *
 * Received fds are close-on-exec and belong to you. When more fds arrive than
 * `maxFds`, or the kernel had to drop some, every fd that arrived is closed
 * and `ERR_FDS_TRUNCATED` thrown. A datagram or seqpacket message longer than
 * `maxBytes` throws `ERR_MESSAGE_TRUNCATED` after closing its fds. End of
 * stream returns empty `data` and no fds.
 *
 * @example
 * const { data, fds } = recvFds(sock, { maxFds: 1 })
 */
export function recvFds(socket: number, options?: RecvFdsOptions): RecvFdsResult {
  validateFd(socket, 'socket')
  return receiveOn(socket, options)
}

/** `recvFds` on a checked socket number. */
export function receiveOn(socket: number, options: RecvFdsOptions | undefined): RecvFdsResult {
  let maxBytes = DEFAULT_MAX_BYTES
  let maxFds = MAX_FDS_PER_MESSAGE
  if (options !== undefined) {
    const opts = optionsObject(options, 'options')
    maxBytes = integerOption(opts.maxBytes, 'maxBytes', 1, MAX_BYTES_LIMIT, DEFAULT_MAX_BYTES)
    maxFds = integerOption(opts.maxFds, 'maxFds', 0, MAX_FDS_PER_MESSAGE, MAX_FDS_PER_MESSAGE)
  }
  if (maxBytes > SCRATCH_DATA_BYTES) return native.recvFds(socket, maxBytes, maxFds)
  scratchInts[0] = socket
  scratchInts[1] = maxBytes
  scratchInts[2] = maxFds
  lean.recvFds()
  const len = scratchInts[0]!
  // The fds are ours from here: nothing below can throw.
  const count = scratchFds[0]!
  const received: number[] = new Array(count)
  for (let i = 0; i < count; i++) received[i] = scratchFds[i + 1]!
  const bytes = Buffer.allocUnsafe(len)
  if (len <= SMALL_COPY) for (let i = 0; i < len; i++) bytes[i] = scratchData[i]!
  else bytes.set(scratchData.subarray(0, len))
  return { data: bytes, fds: received }
}

/**
 * Closes fds in one native call. Every fd is closed even when one fails; the
 * first failure (e.g. `EBADF` for an fd that was not open) is then thrown.
 * `fs.closeSync` costs a native crossing per fd; this costs one per batch.
 */
export function closeFds(fds: readonly number[]): void {
  if (!Array.isArray(fds)) {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "fds" argument must be an array of fds. Received ${describe(fds)}`)
  }
  const count = fds.length // read once: a Proxy could answer differently each time
  if (count > SCRATCH_FD_SLOTS) {
    // More than the scratch holds: each element read once, then one native call.
    const all = Array.from({ length: count }, (_, i): unknown => fds[i])
    for (let i = 0; i < count; i++) validateFd(all[i], `fds[${i}]`)
    native.closeFds(all as number[])
    return
  }
  // Its own loop rather than a helper shared with sendOn: the arrays closed
  // here (received ones) and those sent differ in shape, and one shared loop
  // is polymorphic on both hot paths (measured: about 100 ns per W1 round trip).
  const staged = enterStaging()
  try {
    for (let i = 0; i < count; i++) {
      const fd: unknown = fds[i]
      if (!isFdNumber(fd)) validateFd(fd, `fds[${i}]`)
      staged[i] = fd as number
    }
    stagedToScratch(staged, count)
  } finally {
    leaveStaging()
  }
  scratchInts[0] = count
  lean.closeFds()
}

/** What an fd refers to (`fstat`): `'file'`, `'socket'`, `'fifo'`, ... Throws `EBADF` for a closed fd. */
export function fdKind(fd: number): FdKind {
  validateFd(fd, 'fd')
  return native.fdKind(fd) as FdKind
}
