/** Connecting a new Unix stream socket without blocking the event loop. */
import { Buffer } from 'node:buffer'

import { makeError, type FdpassError } from '../errors'
import { native } from '../internal/native'
import { closeQuietly } from '../internal/fd-release'

/**
 * A new stream socket connected to `address` (in the form the native calls
 * take: `'\0'` for an abstract name), or undefined when `stopped()` said so
 * while it waited (the socket is closed then, and on errors, which it throws).
 */
export async function connectStreamSocket(address: string, stopped: () => boolean): Promise<number | undefined> {
  const fd = native.unixSocket('stream')
  try {
    const bytes = Buffer.from(address, 'utf8')
    // A Unix connect completes at once, or says EAGAIN while the
    // listener's backlog is full: retry with a growing delay.
    for (let delay = 1; !native.connectUnix(fd, bytes); delay = Math.min(delay * 2, 50)) {
      await new Promise<void>((resolve) => setTimeout(resolve, delay))
      if (stopped()) break
    }
  } catch (err) {
    closeQuietly([fd])
    throw err
  }
  if (stopped()) {
    closeQuietly([fd])
    return undefined
  }
  return fd
}

/** Throws `ERR_INVALID_ARG_VALUE` (before anything is taken) unless `fd` is a Unix stream socket. */
export function checkStreamSocket(fd: number): void {
  const type = native.unixSocketType(fd)
  if (type !== 'stream') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_VALUE',
      `FdStream.from() takes a Unix stream socket; fd ${fd} is a ${type} socket: use FdSocket.from()`,
    )
  }
}

/** `ERR_SOCKET_CONNECTED`, for a second connect or adopt. */
export function alreadyConnected(): FdpassError {
  return makeError(Error, 'ERR_SOCKET_CONNECTED', 'The stream is already connected or connecting')
}

/**
 * The construction Node waits for (`_construct`) before a stream reads,
 * writes or is destroyed: over once it has connected, failed to, or been
 * destroyed first; it may end before Node asks (Node asks on the next tick).
 */
export class Construction {
  #callback: ((error?: Error | null) => void) | undefined
  #result: { error: Error | undefined } | undefined

  /** Node's `_construct`: answered now if it is over, else when it ends. */
  ask(callback: (error?: Error | null) => void): void {
    if (this.#result !== undefined) callback(this.#result.error)
    else this.#callback = callback
  }

  /** Ends it (once): with `error`, Node destroys the stream with it. */
  end(error?: Error): void {
    if (this.#result !== undefined) return
    this.#result = { error }
    const callback = this.#callback
    this.#callback = undefined
    callback?.(error)
  }

  /** The stream is destroyed: nobody is to be answered any more. */
  forget(): void {
    this.#callback = undefined
  }
}
