/**
 * The fds of `write({ data, fds })` on their way to the socket: resolved when
 * `write()` is called, duplicated if the write has to wait (so that the
 * caller may close its own at once), and closed with the stream if the write
 * never reaches the socket.
 */
import { Buffer } from 'node:buffer'

import { makeError } from '../errors'
import { toFd } from '../fd-like'
import { native } from '../internal/native'
import { ensureSharedBuffers } from '../internal/shared-buffers'
import { MAX_FDS_PER_MESSAGE } from '../internal/native-constants'
import { toBytes } from '../internal/validate'
import { closeQuietly } from '../internal/fd-release'
import { FdQueue } from './fd-queue'
import type { FdStreamChunk } from './options'

/** The fds of a chunk on its way to `_write`. */
export interface ChunkFds {
  fds: number[]
  /** Duplicates made for a write that waited: closed once sent. */
  owned: boolean
  error?: Error
  chunk?: FdStreamChunk
}

/** The callback of a write. */
export type WriteCallback = (error?: Error | null) => void

/**
 * What a stream holds that must be closed with it: the fds received and not
 * taken, and the duplicates held for writes that wait. Kept apart from the
 * stream, so that a stream collected without being destroyed has them
 * closed (the native side closes the socket itself).
 */
export class Held {
  readonly queue = new FdQueue()
  /** The fds of waiting writes, duplicated by fdpass. */
  readonly duplicates = new Set<ChunkFds>()

  /** Duplicates the fds of a write that waits (marked as held: see src/internal/held-fds.ts). */
  duplicate(entry: ChunkFds): void {
    if (entry.owned || entry.fds.length === 0) return
    try {
      entry.fds = native.duplicateFds(entry.fds, ensureSharedBuffers())
      entry.owned = true
      this.duplicates.add(entry)
    } catch (err) {
      entry.fds = []
      entry.error = err as Error
    }
  }

  /** The write is being sent: its duplicates are the sender's to close. */
  taken(entry: ChunkFds): void {
    this.duplicates.delete(entry)
  }

  closeAll(): void {
    this.queue.closeAll()
    for (const entry of this.duplicates) closeQuietly(entry.fds)
    this.duplicates.clear()
  }
}

/** Checks a `{ data, fds }` chunk and resolves its fds (no syscall). */
export function resolveChunk(chunk: FdStreamChunk): { data: Buffer; entry: ChunkFds | undefined } {
  const bytes = toBytes(chunk.data, 'chunk.data')
  // A fresh Buffer object: the key of this write's fds, whatever the caller reuses.
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const callback = chunk.callback
  if (callback !== undefined && typeof callback !== 'function') {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "chunk.callback" property must be a function')
  }
  const list = chunk.fds
  if (list === undefined || list === null) {
    return { data, entry: callback ? { fds: [], owned: false, chunk } : undefined }
  }
  if (!Array.isArray(list))
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "chunk.fds" property must be an array')
  const count = list.length
  if (count > MAX_FDS_PER_MESSAGE) {
    throw makeError(
      RangeError,
      'ERR_TOO_MANY_FDS',
      `cannot write ${count} fds with one chunk: the limit is ${MAX_FDS_PER_MESSAGE} (split them over several chunks)`,
    )
  }
  const fds = new Array<number>(count)
  for (let i = 0; i < count; i++) fds[i] = toFd(list[i], `chunk.fds[${i}]`)
  if (count > 0 && data.length === 0) {
    throw makeError(
      Error,
      'ERR_EMPTY_DATA',
      'fds travel with a byte on a stream socket: write at least one byte of data with them',
    )
  }
  return { data, entry: { fds, owned: false, chunk: callback ? chunk : undefined } }
}

/** `callback`, preceded by the chunk's own `callback` (as `usocket` called it) once the write succeeded. */
export function withChunkCallback(entry: ChunkFds | undefined, callback: WriteCallback): WriteCallback {
  const chunk = entry?.chunk
  if (chunk?.callback === undefined) return callback
  return (error) => {
    if (!error) chunk.callback!(chunk)
    callback(error)
  }
}
