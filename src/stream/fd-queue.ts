/**
 * The fds that arrived on a byte stream and that its reader has not taken
 * yet, in arrival order. They stay marked as held (see src/held-fds.ts) until
 * they are taken, so that a worker terminated meanwhile has them closed; the
 * queue closes whatever is left when its stream is destroyed.
 */
import { describe, makeError } from '../errors'
import { closeQuietly } from '../internal/fd-release'
import { release } from '../internal/held-fds'

export class FdQueue {
  #fds: number[] = []
  #head = 0

  /** How many fds wait. */
  get length(): number {
    return this.#fds.length - this.#head
  }

  /** Appends the fds of one read, in the order they came. */
  push(fds: readonly number[]): void {
    for (const fd of fds) this.#fds.push(fd)
  }

  /** Takes up to `count` fds from the front; they are the caller's from now on. */
  take(count: number): number[] {
    const taken = this.#remove(count)
    release(taken)
    return taken
  }

  /** Closes every fd still waiting (still marked held until they are closed). */
  closeAll(): void {
    closeQuietly(this.#remove(this.length))
  }

  /** Removes up to `count` fds from the front. */
  #remove(count: number): number[] {
    const end = Math.min(this.#head + count, this.#fds.length)
    const taken = this.#fds.slice(this.#head, end)
    this.#head = end
    if (this.#head === this.#fds.length) {
      this.#fds = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#fds.length) {
      this.#fds = this.#fds.slice(this.#head)
      this.#head = 0
    }
    return taken
  }
}

/** Checks a count of fds to take: an integer from 0 to 2^31 - 1. */
export function fdCount(value: unknown, name: string): number {
  if (typeof value !== 'number') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "${name}" argument must be of type number. Received ${describe(value)}`,
    )
  }
  if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    throw makeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The value of "${name}" is out of range. It must be an integer from 0 to 2147483647. Received ${value}`,
    )
  }
  return value
}
