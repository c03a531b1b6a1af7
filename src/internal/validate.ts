/**
 * Argument checks shared by every entry point: bad input gets a clear
 * TypeError or RangeError before any syscall.
 */
import { Buffer } from 'node:buffer'
import { describe, makeError } from './make-error'
import type { SocketType } from '../raw'
import { MAX_FDS_PER_MESSAGE } from './native-constants'

/** Checks a socket type argument; `'stream'` when absent. */
export function validateSocketType(type: unknown, name = 'type'): SocketType {
  if (type === undefined) return 'stream'
  if (type === 'stream' || type === 'seqpacket' || type === 'dgram') return type
  throw makeError(
    TypeError,
    'ERR_INVALID_ARG_VALUE',
    `The "${name}" argument must be 'stream', 'seqpacket' or 'dgram'. Received ${describe(type)}`,
  )
}

const MAX_FD = 2 ** 31 - 1

/** Checks that `value` can be an fd number: an integer in [0, 2^31 - 1]. */
export function validateFd(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "${name}" argument must be of type number (an fd). Received ${describe(value)}`,
    )
  }
  if (!Number.isInteger(value) || value < 0 || value > MAX_FD) {
    throw makeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The "${name}" argument must be an integer >= 0 and <= ${MAX_FD} (an fd). Received ${value}`,
    )
  }
}

/** Checks a list of fds to send: an array of fd numbers, at most 253 of them. */
export function validateFdList(value: unknown, name: string): asserts value is readonly number[] {
  if (!Array.isArray(value)) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "${name}" argument must be an array of fds. Received ${describe(value)}`,
    )
  }
  if (value.length > MAX_FDS_PER_MESSAGE) {
    throw makeError(
      RangeError,
      'ERR_TOO_MANY_FDS',
      `cannot send ${value.length} fds in one message: the limit is ${MAX_FDS_PER_MESSAGE} (split them over several messages)`,
    )
  }
  for (let i = 0; i < value.length; i++) validateFd(value[i], `${name}[${i}]`)
}

/** Checks an integer option within [min, max]; returns `fallback` when absent. */
export function integerOption(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "${name}" option must be of type number. Received ${describe(value)}`,
    )
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw makeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The "${name}" option must be an integer >= ${min} and <= ${max}. Received ${value}`,
    )
  }
  return value
}

/** Turns message data into bytes: strings are UTF-8. */
export function toBytes(data: unknown, name: string): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (data instanceof Uint8Array) return data
  throw makeError(
    TypeError,
    'ERR_INVALID_ARG_TYPE',
    `The "${name}" argument must be a string, Buffer or Uint8Array. Received ${describe(data)}`,
  )
}

/** Checks an options argument: undefined or a plain object. */
export function optionsObject<T extends object>(value: T | undefined, name: string): Partial<T> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "${name}" argument must be of type object. Received ${describe(value)}`,
    )
  }
  return value
}

/**
 * `ERR_EMPTY_DATA`: fds with no data. The message names the socket's type
 * (unknown for a bare fd number) and, for an unframed `FdSocket` stream
 * (`unframed`), the option that lifts the rule.
 */
export function emptyDataError(type: SocketType | undefined, unframed = false): Error {
  const on = type === undefined ? 'this socket' : `this ${unframed ? 'unframed stream' : type} socket`
  const why =
    type === 'seqpacket'
      ? 'an empty seqpacket message reads as the end of the stream at the peer'
      : type === 'dgram'
        ? 'fdpass sends fds only with data, on every socket type'
        : 'a 0-byte send on a stream socket carries nothing, and the kernel drops its fds'
  const fix = unframed ? ', or turn the framing option on (each message then has a header)' : ''
  return makeError(
    Error,
    'ERR_EMPTY_DATA',
    `fds need at least one byte of data to travel with on ${on} (${why}): send at least one byte with them${fix}`,
  )
}
