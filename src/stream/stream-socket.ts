/**
 * The native side of an `FdStream`: the socket watched by the event loop,
 * reads with their flow control, sends, and the events that come back.
 *
 * The path of a read: the stream's `_read` calls {@link StreamSocket.read},
 * which reads what the kernel holds at once (one lean call) and asks the loop
 * to watch for more (`setReading`); each `recvmsg` (up to 64 KiB) comes back
 * as one message of a batch whose fds join the queue and whose bytes are
 * pushed. A full readable buffer stops the reads, so the kernel's buffer,
 * then the peer, wait. The path of a write: one `sendmsg` with the fds on the
 * first byte; a write the kernel could not take whole waits in the native
 * queue, and its callback runs when it has (`Ev.Written`), which is what
 * makes `write()` return false and `'drain'` come as Node's own sockets do.
 */
import type { Buffer } from 'node:buffer'

import { makeError, type FdpassError } from '../errors'
import { Ev } from '../internal/native-constants'
import { lean, scratchFds, scratchInts } from '../internal/lean'
import { native } from '../internal/native'
import { openNativeSocket, type NativeSocketHandle } from '../internal/native-socket'
import { beginBatch, ensureSharedBuffers, nextMessage } from '../internal/shared-buffers'
import { MAX_FDS_PER_MESSAGE } from '../internal/native-constants'
import type { PeerCredentials } from '../socket-types'
import { closeQuietly } from '../internal/fd-release'
import type { FdQueue } from './fd-queue'
import { READ_CHUNK, READ_ROOM } from './options'
import type { WriteCallback } from './write-chunks'

/** The stream a socket reads into: the `FdStream` itself. */
export interface StreamSink {
  readonly destroyed: boolean
  push(data: Buffer | null): boolean
  destroy(error?: Error): unknown
}

export class StreamSocket {
  /** The socket's fd, owned by the native socket. */
  readonly fd: number
  readonly #native: NativeSocketHandle
  readonly #id: number
  readonly #sink: StreamSink
  readonly #queue: FdQueue
  readonly #maxQueuedFds: number
  #pendingWrites: WriteCallback[] = []
  #wantRead = false
  #room = 0
  #fdRoom = 0
  #peerEnded = false
  /** Whether a batch is being handed over: a read then must not read the socket (it would interleave batches). */
  #delivering = false
  // Held here: the native side keeps the callback only weakly while idle.
  readonly #callback = (kind: number, a: unknown, b: unknown): void => this.#onEvent(kind, a, b)

  /** Takes `fd` (from here on owned by the native socket, failure included). */
  constructor(fd: number, sink: StreamSink, queue: FdQueue, maxQueuedFds: number) {
    this.fd = fd
    this.#sink = sink
    this.#queue = queue
    this.#maxQueuedFds = maxQueuedFds
    // Unframed: each recvmsg (up to READ_CHUNK bytes) is one read of the stream.
    this.#native = openNativeSocket(
      fd,
      'stream',
      { framing: false, maxBytes: READ_CHUNK, maxFds: MAX_FDS_PER_MESSAGE },
      this.#callback,
      ensureSharedBuffers(),
    )
    this.#id = this.#native.id
  }

  /** The reader wants bytes (the stream's `_read`). */
  read(): void {
    this.#wantRead = true
    // What the kernel holds already is read now, without a turn of the
    // event loop; the loop watches the socket for the rest. Not while the
    // queue is full: bytes pushed from _read reach 'data' listeners only on
    // the next tick, so they could not take fds between the reads of this
    // batch, and the loop's read is the one that finds out whether the peer
    // oversteps maxQueuedFds.
    const full = this.#maxQueuedFds > 0 && this.#queue.length >= this.#maxQueuedFds
    if (!full && !this.#delivering && !this.#peerEnded && !this.#sink.destroyed) this.#readNow()
    this.updateReading()
  }

  /** Sends `chunk` with `fds` on its first byte; `done` runs once the kernel has taken all of it. Throws on errors. */
  send(chunk: Buffer, fds: readonly number[], done: WriteCallback): void {
    scratchInts[0] = this.#id
    scratchInts[1] = fds.length
    for (let i = 0; i < fds.length; i++) scratchFds[i] = fds[i]!
    lean.socketSend(chunk)
    if (scratchInts[0] === 1) done()
    else this.#pendingWrites.push(done)
  }

  /** `shutdown(SHUT_WR)`; a peer gone already (`ENOTCONN`) leaves nothing to end. */
  shutdownWrite(): void {
    try {
      native.shutdownWrite(this.fd)
    } catch (err) {
      if ((err as FdpassError).code !== 'ENOTCONN') throw err
    }
  }

  setRef(refed: boolean): void {
    this.#native.setRef(refed)
  }

  peerCredentials(): PeerCredentials {
    return this.#native.peerCredentials()
  }

  /** Closes the socket; writes the kernel had not taken learn it (Node reports ERR_STREAM_DESTROYED). */
  close(): void {
    this.#native.close()
    for (const pending of this.#pendingWrites.splice(0)) pending()
  }

  /** Asks the loop to watch for input while the reader wants some, within the fd queue's room. */
  updateReading(): void {
    if (this.#sink.destroyed) return
    const room = this.#wantRead && !this.#peerEnded ? READ_ROOM : 0
    const fdRoom = room > 0 ? this.#fdRoomNow() : 0
    if (room !== this.#room || fdRoom !== this.#fdRoom) {
      this.#room = room
      this.#fdRoom = fdRoom
      this.#native.setReading(room, fdRoom)
    }
  }

  /** One lean read of up to READ_ROOM reads (see src/internal/lean.ts). */
  #readNow(): void {
    scratchInts[0] = this.#id
    scratchInts[1] = READ_ROOM
    scratchInts[2] = this.#fdRoomNow()
    lean.socketRead()
    const count = scratchInts[0]!
    // -1: delivered through #onEvent already (the end, an error, a large batch).
    if (count > 0) {
      beginBatch()
      this.#deliver(count)
    }
  }

  /**
   * The fds a batch may bring: a batch stops at the read that fills the
   * queue; once it is full, one read more, whose fds (if any) are the
   * error (see #deliverBatch).
   */
  #fdRoomNow(): number {
    return Math.max(1, this.#maxQueuedFds - this.#queue.length)
  }

  #onEvent(kind: number, a: unknown, b: unknown): void {
    switch (kind) {
      case Ev.Published:
        beginBatch()
        this.#deliver(a as number)
        break
      case Ev.Messages:
        beginBatch(a as Buffer, b as Int32Array)
        this.#deliver((b as Int32Array)[0] as number)
        break
      case Ev.End:
        this.#peerEnded = true
        this.#sink.push(null)
        break
      case Ev.Error:
        this.#sink.destroy(a as Error)
        break
      case Ev.Written:
        for (const done of this.#pendingWrites.splice(0, a as number)) done()
        break
      case Ev.WriteError:
        for (const done of this.#pendingWrites.splice(0, b as number)) done(a as Error)
        break
    }
    this.updateReading()
  }

  /** Queues the fds and pushes the bytes of `count` reads of the batch begun. */
  #deliver(count: number): void {
    this.#delivering = true
    try {
      this.#deliverBatch(count)
    } finally {
      this.#delivering = false
    }
  }

  #deliverBatch(count: number): void {
    for (let k = 0; k < count; k++) {
      const { data, fds } = nextMessage()
      if (this.#sink.destroyed) {
        closeQuietly(fds)
        continue
      }
      if (fds.length > 0) {
        this.#queue.push(fds)
        if (this.#queue.length > this.#maxQueuedFds) {
          this.#sink.destroy(
            makeError(
              Error,
              'ERR_FDPASS_TOO_MANY_QUEUED_FDS',
              `the peer sent more than maxQueuedFds (${this.#maxQueuedFds}) fds that were not taken: take them with takeFds() as the protocol says, or raise maxQueuedFds`,
            ),
          )
          continue
        }
      }
      if (data.length > 0 && !this.#sink.push(data)) this.#wantRead = false
    }
  }
}
