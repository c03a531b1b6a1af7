/** Options, chunk shape and constants of the stream face (`FdStream`). */
import type { DuplexOptions } from 'node:stream'

import { makeError } from '../errors'
import type { FdLike } from '../fd-like'
import { integerOption, optionsObject } from '../internal/validate'

/**
 * Default {@link FdStreamOptions.maxQueuedFds}: 1024 received fds waiting
 * for `takeFds()`.
 */
export const DEFAULT_STREAM_MAX_QUEUED_FDS = 1024

/** How much one `recvmsg` of a stream asks the kernel for. */
export const READ_CHUNK = 64 * 1024
/** The room a stream asks its socket's watcher for: any non-zero value means "watch for input". */
export const READ_ROOM = 4
/** How many `recvmsg`s one pull (a wake-up of the loop, or `_read`) may do while the reader wants more. */
export const PULL_ROOM = 16

/** Options of an {@link FdStream}. */
export interface FdStreamOptions {
  /**
   * Keep the writable side open after the peer has ended its side (default
   * `false`: the stream ends its own side too, as `net.Socket` does).
   */
  allowHalfOpen?: boolean
  /**
   * The most received fds that may wait in the queue for `takeFds()` (0 to
   * 2^20, default 1024: {@link DEFAULT_STREAM_MAX_QUEUED_FDS}). A peer that
   * sends more than that before the reader takes them destroys the stream
   * with `ERR_FDPASS_TOO_MANY_QUEUED_FDS`, and every queued fd is closed; 0
   * refuses fds altogether. Checked at every read, so a peer cannot fill
   * this process's fd table.
   */
  maxQueuedFds?: number
  /** The readable side's buffer, in bytes (default Node's, 16 KiB). */
  readableHighWaterMark?: number
  /** The writable side's buffer, in bytes (default Node's, 16 KiB): past it, `write()` returns false. */
  writableHighWaterMark?: number
}

/**
 * A chunk of bytes with fds attached, for {@link FdStream.write}. The fds go
 * with the first byte of `data`, which must not be empty when there are fds.
 */
export interface FdStreamChunk {
  /** The bytes; a string is written as UTF-8. */
  data: Uint8Array | string
  /**
   * Fds to attach (at most 253): numbers, `{ fd }` objects, `FileHandle`s,
   * `net` sockets and servers, `dgram` sockets. fdpass sends duplicates when
   * the write has to wait, so they may be closed as soon as `write()` returns.
   */
  fds?: readonly FdLike[]
  /** Called with the chunk once the kernel has taken it (as `usocket` did). */
  callback?: (chunk: FdStreamChunk) => void
}

/** Checks a high-water mark option. */
function highWaterMark(value: unknown, name: string): number | undefined {
  return value === undefined ? undefined : integerOption(value, name, 0, 2 ** 31 - 1, 0)
}

/** Checks the options of an `FdStream`: those of its Duplex, and its fd queue's limit. */
export function resolveStreamOptions(options: FdStreamOptions | undefined): {
  duplex: DuplexOptions
  maxQueuedFds: number
} {
  const opts = optionsObject(options, 'options')
  if (opts.allowHalfOpen !== undefined && typeof opts.allowHalfOpen !== 'boolean') {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "allowHalfOpen" option must be of type boolean')
  }
  return {
    maxQueuedFds: integerOption(opts.maxQueuedFds, 'maxQueuedFds', 0, 2 ** 20, DEFAULT_STREAM_MAX_QUEUED_FDS),
    duplex: {
      allowHalfOpen: opts.allowHalfOpen === true,
      readableHighWaterMark: highWaterMark(opts.readableHighWaterMark, 'readableHighWaterMark'),
      writableHighWaterMark: highWaterMark(opts.writableHighWaterMark, 'writableHighWaterMark'),
      decodeStrings: true,
    },
  }
}

/** Lets the server wrap accepted fds without the checks of `FdStream.from`. */
export const kAdopt = Symbol('fdpass.stream.adopt')
