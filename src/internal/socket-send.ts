/**
 * The send path of an `FdSocket`: turning the caller's fd-likes into fd
 * numbers, the empty-message rules, one lean call (see lean.ts), and the
 * sends the kernel has not taken yet.
 */
import { makeError } from './make-error'
import type { SocketType } from '../raw'
import type { FdLike } from '../fd-like'
import { toFd } from './fd-conversion'
import { MAX_FDS_PER_MESSAGE } from './native-constants'
import {
  copyToScratch,
  enterStaging,
  isFdNumber,
  lean,
  leaveStaging,
  scratchInts,
  SMALL_COPY,
  stagedToScratch,
} from './lean'
import { emptyDataError, toBytes } from './validate'

/**
 * Sends one message on the native socket `id`. True when the kernel took it
 * whole now; false when it waits in the native write queue (the socket
 * reports `Written` or `WriteError` for it later). Throws what the send met.
 */
export function sendMessage(
  id: number,
  data: Uint8Array | string,
  fds: readonly FdLike[] | undefined,
  type: SocketType,
  framing: boolean,
): boolean {
  const bytes = toBytes(data, 'data')
  const length = bytes.length // before the fds reach the scratch: nothing may run user code after that
  const count = resolveFds(fds)
  // A framed message always has its header: an empty one is a message
  // like any other. Unframed, an empty send with fds is refused on every
  // type; without fds it sends an empty datagram, nothing at all on a
  // stream (as net.Socket's write('') does), and is refused on
  // seqpacket, whose peer would read it as the end of the stream.
  if (length === 0 && !framing) {
    if (count > 0) throw emptyDataError(type, type === 'stream')
    if (type === 'seqpacket') {
      throw makeError(
        Error,
        'ERR_EMPTY_DATA',
        'an empty message on this seqpacket socket would read as the end of the stream at the peer: send at least one byte',
      )
    }
  }
  scratchInts[0] = id
  if (length > SMALL_COPY) {
    scratchInts[1] = count
    lean.socketSend(bytes)
  } else {
    scratchInts[1] = copyToScratch(bytes)
    scratchInts[2] = count
    lean.socketSendScratch()
  }
  return scratchInts[0] === 1
}

/** Puts the fds of `fds` into the lean fd slots; returns how many. */
function resolveFds(fds: readonly FdLike[] | undefined): number {
  if (fds === undefined) return 0
  if (!Array.isArray(fds)) {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "fds" argument must be an array')
  }
  const count = fds.length // read once: a Proxy could answer differently each time
  if (count > MAX_FDS_PER_MESSAGE) {
    throw makeError(
      RangeError,
      'ERR_TOO_MANY_FDS',
      `cannot send ${count} fds in one message: the limit is ${MAX_FDS_PER_MESSAGE} (split them over several messages)`,
    )
  }
  // Staged first: toFd may run user code that sends through the scratch (see enterStaging).
  const staged = enterStaging()
  try {
    for (let i = 0; i < count; i++) {
      const fd: unknown = fds[i]
      // The element's name is built only for the error message.
      staged[i] = isFdNumber(fd) ? (fd as number) : toFd(fd, `fds[${i}]`)
    }
    stagedToScratch(staged, count)
  } finally {
    leaveStaging()
  }
  return count
}

interface PendingSend {
  resolve(): void
  reject(error: Error): void
}

/** The sends of a socket that wait in its native write queue, in order. */
export class PendingSends {
  #pending: PendingSend[] = []

  /** A promise for the send just queued natively. */
  add(): Promise<void> {
    return new Promise((resolve, reject) => this.#pending.push({ resolve, reject }))
  }

  /** The first `count` sends went out whole. */
  written(count: number): void {
    for (const pending of this.#pending.splice(0, count)) pending.resolve()
  }

  /** Takes the first `count` sends, to reject them. */
  take(count: number): PendingSend[] {
    return this.#pending.splice(0, count)
  }

  /** Rejects every pending send with `error`. */
  rejectAll(error: Error): void {
    for (const pending of this.#pending.splice(0)) pending.reject(error)
  }
}
