/**
 * What the old process may hand over, and what it says about each: the
 * sender knows what each object is, so it describes it (kind, address).
 */
import * as dgram from 'node:dgram'
import * as net from 'node:net'

import { describe, makeError } from '../errors'
import { FdServer } from '../fd-server'
import { toFd } from '../fd-like'
import { validateFd } from '../internal/validate'
import { nameIsValid, type ListenerMetadata, MAX_NAME_BYTES } from './protocol'

/**
 * A listener the old process can hand over: a listening `net.Server` (an
 * `http.Server`, `https.Server` …, on TCP or a Unix socket path), a bound
 * `dgram.Socket`, an fdpass `FdServer`, or an fd number.
 */
export type HandoffSource = net.Server | dgram.Socket | FdServer | number

/** A listener ready to send: its fd (borrowed, never closed here) and its metadata. */
export interface Described {
  fd: number
  meta: ListenerMetadata
  server: HandoffSource
}

/** Checks the listeners object before anything else happens. */
export function checkSources(listeners: unknown): Array<[string, HandoffSource]> {
  if (listeners === null || typeof listeners !== 'object' || Array.isArray(listeners)) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "listeners" argument must be an object of name: server. Received ${describe(listeners)}`,
    )
  }
  const entries = Object.entries(listeners as Record<string, unknown>)
  if (entries.length === 0)
    throw makeError(TypeError, 'ERR_INVALID_ARG_VALUE', 'The "listeners" argument names no listener')
  for (const [name, value] of entries) {
    if (!nameIsValid(name)) {
      throw makeError(TypeError, 'ERR_INVALID_ARG_VALUE', `Listener names must be 1 to ${MAX_NAME_BYTES} bytes long`)
    }
    if (typeof value === 'number') validateFd(value, `listeners.${name}`)
    else if (!(value instanceof net.Server || value instanceof dgram.Socket || value instanceof FdServer)) {
      throw makeError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "listeners.${name}" value must be a net.Server, a dgram.Socket, an FdServer or an fd number. Received ${describe(value)}`,
      )
    }
  }
  return entries as Array<[string, HandoffSource]>
}

/** The fd and metadata of one listener now (it may have closed since it was registered). */
export function describeSource(name: string, server: HandoffSource): Described {
  if (typeof server === 'number') return { fd: server, meta: { name, kind: 'fd' }, server }
  if (server instanceof FdServer) {
    if (server.fd < 0) throw notListening(name)
    return { fd: server.fd, meta: { name, kind: 'fdpass', path: server.path }, server }
  }
  let fd: number
  try {
    fd = toFd(server, `listeners.${name}`)
  } catch {
    throw notListening(name)
  }
  const address = server.address()
  if (typeof address === 'string') return { fd, meta: { name, kind: 'unix', path: address }, server }
  if (address === null) throw notListening(name)
  const kind = server instanceof dgram.Socket ? 'udp' : 'tcp'
  const family = address.family === 'IPv6' ? 'IPv6' : 'IPv4'
  return { fd, meta: { name, kind, address: address.address, family, port: address.port }, server }
}

function notListening(name: string) {
  return makeError(
    Error,
    'ERR_SERVER_NOT_RUNNING',
    `Listener '${name}' is not listening (or bound) any more: nothing to hand over`,
  )
}
