/**
 * Turns the things Node programs hold (fd numbers, `{ fd }` objects, file
 * handles, `net` sockets and servers, `dgram` sockets) into fd numbers.
 */
import * as dgram from 'node:dgram'
import * as net from 'node:net'

import { describe, makeError } from './make-error'
import { validateFd } from './validate'

interface WithHandle {
  _handle?: { fd?: number } | null
}

function handleFd(owner: object): number | undefined {
  const fd = (owner as WithHandle)._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

function dgramFd(socket: dgram.Socket): number | undefined {
  // dgram keeps its handle in a symbol-keyed state object.
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    const state = (socket as unknown as Record<symbol, { handle?: { fd?: number } } | undefined>)[symbol]
    const fd = state?.handle?.fd
    if (typeof fd === 'number' && fd >= 0) return fd
  }
  return undefined
}

/** The fd of `value`, or a TypeError saying why there is none. */
export function toFd(value: unknown, name: string): number {
  if (typeof value === 'number') {
    validateFd(value, name)
    return value
  }
  let fd: number | undefined
  let what = 'it'
  if (value instanceof net.Socket || value instanceof net.Server) {
    fd = handleFd(value)
    what = value instanceof net.Server ? 'the server is not listening' : 'the socket is not connected or is closed'
  } else if (value instanceof dgram.Socket) {
    fd = dgramFd(value)
    what = 'the dgram socket is not bound or is closed'
  } else if (value !== null && typeof value === 'object' && 'fd' in value) {
    fd = (value as { fd: unknown }).fd as number
    if (typeof fd === 'number' && fd === -1) what = 'the file handle is closed'
    else {
      validateFd(fd, `${name}.fd`)
      return fd
    }
  } else {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "${name}" argument must be an fd number, { fd }, a FileHandle, a net.Socket, a net.Server or a dgram.Socket. Received ${describe(value)}`,
    )
  }
  if (fd === undefined || fd < 0) {
    throw makeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The "${name}" argument has no fd to send: ${what}`)
  }
  return fd
}
