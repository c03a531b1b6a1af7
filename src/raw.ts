/**
 * The raw, synchronous API: plain fd numbers in and out, one sendmsg or
 * recvmsg per call, in the spirit of Python's `socket.send_fds` /
 * `socket.recv_fds`.
 */
import type { Buffer } from 'node:buffer'

import { describe, makeError } from './errors'
// Straight from the generated module: a re-export compiles to a getter.
import { DEFAULT_MAX_BYTES, MAX_FDS_PER_MESSAGE, SCRATCH_FD_SLOTS } from './internal/native-constants'
import { enterStaging, isFdNumber, lean, leaveStaging, scratchInts, stagedToScratch } from './internal/lean'
import { native } from './internal/native'
import { receiveOn, sendOn } from './internal/raw-io'
import { validateFd, validateSocketType } from './internal/validate'

export { DEFAULT_MAX_BYTES, MAX_FDS_PER_MESSAGE }

/** The kind of a Unix domain socket. `'seqpacket'` exists on Linux only. */
export type SocketType = 'stream' | 'seqpacket' | 'dgram'

/** What an fd refers to, as reported by `fstat`. */
export type FdKind =
  'file' | 'directory' | 'socket' | 'fifo' | 'character-device' | 'block-device' | 'symlink' | 'unknown'

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

/**
 * Closes fds in one native call. Every fd is closed even when one fails; the
 * first failure (e.g. `EBADF` for an fd that was not open) is then thrown.
 * `fs.closeSync` costs a native crossing per fd; this costs one per batch.
 */
export function closeFds(fds: readonly number[]): void {
  if (!Array.isArray(fds)) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "fds" argument must be an array of fds. Received ${describe(fds)}`,
    )
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
