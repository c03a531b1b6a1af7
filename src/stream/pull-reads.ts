/**
 * The reads of an `FdStream`, pulled as Node's own sockets pull theirs: one
 * `recvmsg` straight into a Buffer this side owns (the lean call
 * `socketReadInto`, crates/fdpass-node/src/socket/stream_read.rs), its fds
 * into the scratch's slots, marked held until they join the queue. No batch
 * and no shared buffer in between: a read that fills much of its Buffer is
 * pushed as it is (a fresh Buffer is taken for the next read), a small one
 * is copied into a Buffer of its own size so that it does not hold 64 KiB.
 */
import { Buffer } from 'node:buffer'

import { makeError } from '../errors'
import { lean, scratchFds, scratchInts } from '../internal/lean'
import { PULL_END, PULL_WOULD_BLOCK } from '../internal/native-constants'
import type { FdQueue } from './fd-queue'
import { READ_CHUNK } from './options'

/** Reads of at most this many bytes are copied into a Buffer of their size; larger ones keep theirs. */
const COPY_BELOW = READ_CHUNK / 4

/**
 * The Buffer the next read of any stream of this thread goes into: one for
 * all, not one per stream (a thousand idle streams hold none), kept while
 * reads find nothing or are copied out, replaced once one is handed over.
 * Reads are synchronous, so no two use it at once.
 */
let spare: Buffer | undefined

/** What a stream's reads are pushed into. */
export interface PullSink {
  readonly destroyed: boolean
  push(data: Buffer | null): boolean
  destroy(error?: Error): unknown
}

/** What one pull found. */
export const enum Pulled {
  /** Bytes (or fds) were read, and the reader wants more. */
  More,
  /** The reader wants no more now (its buffer is full, or it was destroyed). */
  Enough,
  /** The socket has nothing to read now. */
  Dry,
  /** The peer ended its side: the end was pushed. */
  End,
}

/** Switches the native socket `id` to pulled reads; false if it cannot (not an unframed stream). */
export function pullReads(id: number): boolean {
  scratchInts[0] = id
  lean.socketPullReads()
  return scratchInts[0] === 1
}

export class PullReader {
  readonly #id: number
  readonly #sink: PullSink
  readonly #queue: FdQueue
  readonly #maxQueuedFds: number

  constructor(id: number, sink: PullSink, queue: FdQueue, maxQueuedFds: number) {
    this.#id = id
    this.#sink = sink
    this.#queue = queue
    this.#maxQueuedFds = maxQueuedFds
  }

  /** Whether the fd queue is at its limit: a read more may bring fds only as the error. */
  get full(): boolean {
    return this.#maxQueuedFds > 0 && this.#queue.length >= this.#maxQueuedFds
  }

  /**
   * One read: queues its fds (destroying the stream if they pass
   * maxQueuedFds: checked at every read), then pushes its bytes. Errors of
   * the socket destroy the stream.
   */
  pull(): Pulled {
    const buffer = (spare ??= Buffer.allocUnsafeSlow(READ_CHUNK))
    scratchInts[0] = this.#id
    try {
      lean.socketReadInto(buffer)
    } catch (err) {
      this.#sink.destroy(err as Error)
      return Pulled.Enough
    }
    const n = scratchInts[0]!
    if (n === PULL_WOULD_BLOCK) return Pulled.Dry
    if (n === PULL_END) {
      this.#sink.push(null)
      return Pulled.End
    }
    const fdCount = scratchFds[0]!
    if (fdCount > 0) {
      const fds = new Array<number>(fdCount)
      for (let i = 0; i < fdCount; i++) fds[i] = scratchFds[i + 1]!
      // Queued (and held) first: the queue closes them if the stream goes.
      this.#queue.push(fds)
      if (this.#queue.length > this.#maxQueuedFds) {
        this.#sink.destroy(
          makeError(
            Error,
            'ERR_FDPASS_TOO_MANY_QUEUED_FDS',
            `the peer sent more than maxQueuedFds (${this.#maxQueuedFds}) fds that were not taken: take them with takeFds() as the protocol says, or raise maxQueuedFds`,
          ),
        )
        return Pulled.Enough
      }
    }
    if (n === 0) return Pulled.More
    let data: Buffer
    if (n <= COPY_BELOW) {
      data = Buffer.allocUnsafe(n)
      buffer.copy(data, 0, 0, n)
    } else {
      data = n === buffer.length ? buffer : buffer.subarray(0, n)
      spare = undefined
    }
    return this.#sink.push(data) && !this.#sink.destroyed ? Pulled.More : Pulled.Enough
  }
}
