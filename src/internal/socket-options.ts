/**
 * The options of the event-loop sockets, checked and with their defaults.
 */
import { makeError } from './make-error'
import type { ReceiveManyOptions, SocketOptions } from '../socket-types'
import { DEFAULT_SOCKET_MAX_BYTES, MAX_FDS_PER_MESSAGE } from './native-constants'
import type { SocketType } from '../raw'
import { integerOption, optionsObject } from './validate'

/** Resolved options of a socket. */
export interface ResolvedOptions {
  framing: boolean
  maxBytes: number
  maxFds: number
  readAhead: number
  maxQueuedFds: number
}

const DEFAULT_READ_AHEAD = 16
const DEFAULT_RECEIVE_MANY = 64
const MAX_RECEIVE_MANY = 4096
const DEFAULT_MAX_QUEUED_FDS = 1024

/** Checks socket options. */
export function resolveOptions(type: SocketType, options: SocketOptions | undefined): ResolvedOptions {
  const opts = optionsObject(options, 'options')
  if (opts.framing !== undefined && typeof opts.framing !== 'boolean') {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "framing" option must be of type boolean')
  }
  return {
    framing: type === 'stream' && opts.framing !== false,
    maxBytes: integerOption(opts.maxBytes, 'maxBytes', 1, 2 ** 31 - 1, DEFAULT_SOCKET_MAX_BYTES),
    maxFds: integerOption(opts.maxFds, 'maxFds', 0, MAX_FDS_PER_MESSAGE, MAX_FDS_PER_MESSAGE),
    readAhead: integerOption(opts.readAhead, 'readAhead', 0, 4096, DEFAULT_READ_AHEAD),
    maxQueuedFds: integerOption(opts.maxQueuedFds, 'maxQueuedFds', 0, 2 ** 20, DEFAULT_MAX_QUEUED_FDS),
  }
}

/** Checks the options of `receiveMany()`; returns its `max`. */
export function receiveManyMax(options: ReceiveManyOptions | undefined): number {
  const opts = optionsObject(options, 'options')
  return integerOption(opts.max, 'max', 1, MAX_RECEIVE_MANY, DEFAULT_RECEIVE_MANY)
}
