/**
 * The native side of an `FdStream`: the socket watched by the event loop,
 * reads with their flow control, sends, and the events that come back.
 *
 * The path of a read: the socket pulls its reads (pull-reads.ts). The
 * stream's `_read` calls {@link StreamSocket.read}, which reads what the
 * kernel holds at once, each `recvmsg` (up to 64 KiB) straight into a Buffer
 * that is pushed as it is, its fds into the queue; then it asks the loop to
 * watch for more (`setReading`). When the loop sees input, the native socket
 * reads nothing itself: it calls back with `Ev.Readable`, and the same pulls
 * run until the socket is dry or the reader has enough. A full readable
 * buffer stops the reads, so the kernel's buffer, then the peer, wait. The
 * path of a write: one `sendmsg` with the fds on the first byte; a write the
 * kernel could not take whole waits in the native queue, and its callback
 * runs when it has (`Ev.Written`), which is what makes `write()` return
 * false and `'drain'` come as Node's own sockets do.
 */
import type { Buffer } from 'node:buffer'

import { makeError, type FdpassError } from '../errors'
import { Ev, MAX_FDS_PER_MESSAGE } from '../internal/native-constants'
import { lean, scratchFds, scratchInts } from '../internal/lean'
import { native } from '../internal/native'
import { openNativeSocket, type NativeSocketHandle } from '../internal/native-socket'
import { ensureSharedBuffers } from '../internal/shared-buffers'
import type { PeerCredentials } from '../socket-types'
import type { FdQueue } from './fd-queue'
import { PULL_ROOM, READ_CHUNK, READ_ROOM } from './options'
import { Pulled, PullReader, pullReads } from './pull-reads'
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
  readonly #reader: PullReader
  #pendingWrites: WriteCallback[] = []
  #wantRead = false
  #room = 0
  #peerEnded = false
  /** Whether reads are being pulled: a nested read (from a 'data' listener) leaves the pulling to that loop. */
  #pulling = false
  // Held here: the native side keeps the callback only weakly while idle.
  readonly #callback = (kind: number, a: unknown, b: unknown): void => this.#onEvent(kind, a, b)

  /** Takes `fd` (from here on owned by the native socket, failure included). */
  constructor(fd: number, sink: StreamSink, queue: FdQueue, maxQueuedFds: number) {
    this.fd = fd
    this.#sink = sink
    // Unframed: each recvmsg (up to READ_CHUNK bytes) is one read of the stream.
    this.#native = openNativeSocket(
      fd,
      'stream',
      { framing: false, maxBytes: READ_CHUNK, maxFds: MAX_FDS_PER_MESSAGE },
      this.#callback,
      ensureSharedBuffers(),
    )
    this.#id = this.#native.id
    if (!pullReads(this.#id)) {
      this.#native.close()
      throw makeError(Error, 'ERR_FDPASS_INTERNAL', 'fdpass: the native socket of a stream cannot pull its reads')
    }
    this.#reader = new PullReader(this.#id, sink, queue, maxQueuedFds)
  }

  /** The reader wants bytes (the stream's `_read`). */
  read(): void {
    this.#wantRead = true
    // What the kernel holds already is read now, without a turn of the
    // event loop; the loop watches the socket for the rest. Not while the
    // queue is full: bytes pushed from _read reach 'data' listeners only on
    // the next tick, so they could not take fds between these reads, and the
    // loop's read is the one that finds out whether the peer oversteps
    // maxQueuedFds.
    if (!this.#reader.full) this.#pull()
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

  /** Asks the loop to watch for input while the reader wants some (the fd limit is the reader's, checked at every pull). */
  updateReading(): void {
    if (this.#sink.destroyed) return
    const room = this.#wantRead && !this.#peerEnded ? READ_ROOM : 0
    if (room !== this.#room) {
      this.#room = room
      this.#native.setReading(room, room)
    }
  }

  /**
   * Pulls reads while the reader wants more, up to PULL_ROOM of them (other
   * I/O waits meanwhile); after the first, only while the fd queue has room
   * (a read past it may bring fds only as the error, see PullReader#full).
   */
  #pull(): void {
    if (this.#pulling || this.#peerEnded || this.#sink.destroyed) return
    this.#pulling = true
    try {
      for (let k = 0; k < PULL_ROOM; k++) {
        if (k > 0 && (!this.#wantRead || this.#peerEnded || this.#sink.destroyed || this.#reader.full)) break
        const pulled = this.#reader.pull()
        if (pulled === Pulled.More) continue
        if (pulled === Pulled.Enough) this.#wantRead = false
        else if (pulled === Pulled.End) this.#peerEnded = true
        break
      }
    } finally {
      this.#pulling = false
    }
  }

  #onEvent(kind: number, a: unknown, b: unknown): void {
    switch (kind) {
      case Ev.Readable:
        if (this.#wantRead) this.#pull()
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
}
