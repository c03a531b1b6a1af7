/**
 * The receive side of an `FdSocket`: messages read ahead, waiting
 * `receive()` / `receiveMany()` calls, how much the event loop may read
 * ahead of them, and the delivery of each batch the native side reads.
 *
 * A receive first tries the socket itself (one lean call, see lean.ts) and
 * waits on the event loop only when nothing is there; while messages stream
 * in faster than they are taken, it reads ahead instead. The event loop
 * reads only while someone waits, within `readAhead` messages and
 * `maxQueuedFds` fds, so that a peer flooding fds is held back by the
 * kernel's socket buffer rather than this process's fd table.
 */
import type { FdpassError } from '../errors'
import type { FdMessage } from '../socket-types'
import { cancelStop, deferStop } from './deferred-stops'
import { closeQuietly, handOver, handOverSoon } from './fd-release'
import { release } from './held-fds'
import { lean, scratchInts } from './lean'
import type { NativeSocketHandle } from './native-socket'
import { Queue } from './queue'
import { beginBatch, nextMessage } from './shared-buffers'
import type { ResolvedOptions } from './socket-options'
import { abortError, closedError, iterate, settle, wait, type Waiter } from './waiters'

export class Receiver {
  /** Messages read ahead (and receive errors, in order), not taken yet. */
  readonly messages = new Queue<FdMessage | Error>()
  /** True while a read of the socket runs: its events update the reading once it returns. */
  reading = false
  readonly #native: NativeSocketHandle
  readonly #id: number
  readonly #options: ResolvedOptions
  #waiters: Array<Waiter<FdMessage>> = []
  #room = 0
  #fdRoom = 0
  #queuedFds = 0
  #stopPending = false
  /** No more messages will come: end of stream, or the socket was destroyed. */
  #ended = false
  /** close() was called. */
  #closed = false
  /** Whether receive() reads ahead (see next). */
  #streaming = false

  constructor(handle: NativeSocketHandle, options: ResolvedOptions) {
    this.#native = handle
    this.#id = handle.id
    this.#options = options
  }

  /** The next message (`receive()`), or undefined for an iterator at the end. */
  next(iterating: boolean, signal: AbortSignal | undefined): Promise<FdMessage | undefined> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    if (this.#mayReadNow()) {
      // Try the syscall first: wait on the loop only if nothing is there.
      // Usually one message: one recvmsg, no extra call that would only say
      // EAGAIN (a request-reply peer sends one at a time). While messages
      // stream in faster than they are taken, read ahead instead: one call
      // then serves the next receive()s from the queue. Streaming is when
      // the last read (this one's, or the event loop's) found more than one
      // message.
      const ahead = this.#streaming
      const count = this.#readNow(ahead ? 1 + this.#options.readAhead : 1)
      if (ahead) this.#streaming = count > 1
      // The common case: exactly the one message asked for, handed over
      // without passing through the queue.
      if (count === 1 && this.messages.length === 0) {
        beginBatch()
        return Promise.resolve(handOver(nextMessage()))
      }
      if (count > 0) this.deliverPublished(count)
    }
    const item = this.messages.shift()
    if (item !== undefined) {
      if (item instanceof Error) return Promise.reject(item)
      release(item.fds)
      this.#queuedFds -= item.fds.length
      return Promise.resolve(item)
    }
    if (this.#ended || this.#closed) {
      if (iterating) return Promise.resolve(undefined)
      return Promise.reject(
        closedError(this.#closed ? 'receive: the socket is closed' : 'receive: the peer closed the connection'),
      )
    }
    return wait(this.#waiters, iterating, signal, () => this.updateReading())
  }

  /** An async iterator over the messages. */
  iterator(): AsyncIterator<FdMessage> {
    return iterate((iterating) => this.next(iterating, undefined))
  }

  /** `receiveMany()` with a checked `max`. */
  many(max: number, signal: AbortSignal | undefined): Promise<FdMessage[]> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    const batch: FdMessage[] = []
    this.#takeQueued(batch, max)
    if (batch.length < max && this.#mayReadNow()) {
      const count = this.#readNow(max - batch.length)
      if (count > 0) {
        beginBatch()
        for (let k = 0; k < count; k++) batch.push(handOver(nextMessage()))
      } else if (count < 0) this.#takeQueued(batch, max)
    }
    if (batch.length > 0) return Promise.resolve(batch)
    // An error at the head of the queue, or the end: as receive() reports them.
    if (this.messages.length > 0 || this.#ended || this.#closed) return this.next(false, signal) as Promise<never>
    // Wait: the messages handed over in one go, up to max, in order, go to
    // this call before any receive() made after it (see #deliver).
    return wait(this.#waiters, false, signal, () => this.updateReading(), max) as unknown as Promise<FdMessage[]>
  }

  /** Moves queued messages (not errors) into `batch`, up to `max` in all. */
  #takeQueued(batch: FdMessage[], max: number): void {
    const queue = this.messages
    while (batch.length < max && queue.length > 0) {
      const item = queue.peek()!
      if (item instanceof Error) break
      queue.shift()
      release(item.fds)
      batch.push(item)
      this.#queuedFds -= item.fds.length
    }
  }

  /**
   * Whether a receive may read the socket itself, now: nothing queued, no
   * end, and nobody waiting ahead of it (they are served first, in order).
   */
  #mayReadNow(): boolean {
    return this.messages.length === 0 && !this.#ended && !this.#closed && this.#waiters.length === 0
  }

  /**
   * Reads up to `max` messages now (one lean call, see lean.ts), within
   * maxQueuedFds plus one message's worth of fds, as the event loop's reads.
   * Returns how many wait in the shared buffers (read them with nextMessage),
   * 0 for none, or -1 when they were delivered as events instead.
   */
  #readNow(max: number): number {
    this.reading = true
    scratchInts[0] = this.#id
    scratchInts[1] = max
    scratchInts[2] = this.#fdRoomFor(1)
    lean.socketRead()
    this.reading = false
    return scratchInts[0]!
  }

  /** Fds a read may bring: what maxQueuedFds leaves, and always enough for the waiters. */
  #fdRoomFor(waiters: number): number {
    const { maxQueuedFds, maxFds } = this.#options
    return Math.max(maxQueuedFds - this.#queuedFds, waiters * Math.max(maxFds, 1))
  }

  /** Tells the native side how much the event loop may read, after the waiters changed. */
  updateReading(): void {
    if (this.#closed) return
    const waiters = this.#waiters.length
    const room = waiters > 0 && !this.#ended ? waiters + this.#options.readAhead : 0
    if (room === 0 && this.#room > 0 && !this.#ended) {
      // Nobody waits right now, but a loop over receive() asks again as soon
      // as it has handled this message: stop watching the socket only if
      // nobody has once that code has run (see deferred-stops.ts).
      if (!this.#stopPending) {
        this.#stopPending = true
        deferStop(this.#settleStopLater)
      }
      return
    }
    if (this.#stopPending) {
      this.#stopPending = false
      cancelStop(this.#settleStopLater)
    }
    this.#updateReadingNow()
  }

  /** Settles a deferred stop; one function per socket, so that it can be withdrawn. */
  readonly #settleStopLater = (): void => {
    this.#stopPending = false
    this.#updateReadingNow()
  }

  #updateReadingNow(): void {
    if (this.#closed) return
    const waiters = this.#waiters.length
    const room = waiters > 0 && !this.#ended ? waiters + this.#options.readAhead : 0
    const fdRoom = room > 0 ? this.#fdRoomFor(waiters) : 0
    if (room !== this.#room || fdRoom !== this.#fdRoom) {
      this.#room = room
      this.#fdRoom = fdRoom
      this.#native.setReading(room, fdRoom)
    }
  }

  /** `Ev.Published`: `count` messages wait in the shared buffers. */
  onPublished(count: number): void {
    this.#streaming = count > 1
    this.deliverPublished(count)
  }

  /** `Ev.Messages`: a batch too large for the shared buffers, handed over as its own Buffer and Int32Array. */
  onMessages(data: Buffer, meta: Int32Array): void {
    this.#streaming = meta[0]! > 1
    beginBatch(data, meta)
    this.#deliverBatch(meta[0] as number)
  }

  /** Delivers the `count` messages the native side just wrote into the shared buffers. */
  deliverPublished(count: number): void {
    beginBatch()
    this.#deliverBatch(count)
  }

  /** Hands over the `count` messages of the batch begun (see shared-buffers.ts), as one delivery. */
  #deliverBatch(count: number): void {
    for (let k = 0; k < count; k++) this.#deliver(nextMessage())
    // A receiveMany() that got messages in this delivery resolves with them.
    const waiter = this.#waiters[0]
    if (waiter?.many && waiter.many.items.length > 0) settle(this.#waiters.shift()!, undefined, undefined)
  }

  #deliver(message: FdMessage): void {
    if (this.#closed) {
      // Arrived in the batch that was being handed over when close() ran.
      closeQuietly(message.fds)
      return
    }
    const waiter = this.#waiters[0]
    if (waiter?.many) {
      // A receiveMany() takes the rest of this delivery, up to its max.
      waiter.many.items.push(handOverSoon(message))
      if (waiter.many.items.length >= waiter.many.max) settle(this.#waiters.shift()!, undefined, undefined)
    } else if (waiter) settle(this.#waiters.shift()!, handOverSoon(message), undefined)
    else {
      // Still marked as held (see held-fds.ts) until a receive() takes it.
      this.messages.push(message)
      this.#queuedFds += message.fds.length
    }
  }

  /** A receive error, in its place among the messages: the first waiter gets it, else it is queued. */
  pushError(error: FdpassError): void {
    const waiter = this.#waiters.shift()
    if (waiter) settle(waiter, undefined, error, true)
    else this.messages.push(error)
  }

  /** End of stream: nothing more will come; the waiters learn it now. */
  end(): void {
    this.#ended = true
    for (const waiter of this.#waiters.splice(0)) {
      settle(waiter, undefined, closedError('receive: the peer closed the connection'))
    }
  }

  /**
   * The socket is being destroyed after a send found the peer gone: what
   * the peer sent before it went is still in the kernel. Take it, within
   * the read-ahead limits, so that a reply followed by the peer's exit is
   * not lost.
   */
  takeUnread(): void {
    if (this.#ended || this.#waiters.length > 0) return
    const count = this.#readNow(1 + this.#options.readAhead)
    if (count > 0) this.deliverPublished(count)
  }

  /** The socket was destroyed: what was queued stays receivable; waiters reject saying `reason`. */
  destroyed(reason: string): void {
    this.#ended = true
    for (const waiter of this.#waiters.splice(0)) settle(waiter, undefined, closedError(`receive: ${reason}`))
  }

  /** close(): closes the fds of messages nobody took; waiters reject with `error`. */
  close(error: Error): void {
    this.#closed = true
    for (const item of this.messages.drain()) if (!(item instanceof Error)) closeQuietly(item.fds)
    this.#queuedFds = 0
    for (const waiter of this.#waiters.splice(0)) settle(waiter, undefined, error)
  }
}
