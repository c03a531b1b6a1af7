/**
 * The listener handoff protocol, version 1, on a framed fdpass stream
 * (one `send` = one message with exactly its fds):
 *
 * 1. taker → server: `{"protocol":"fdpass-listeners","version":1,"type":"take"}`
 * 2. server → taker: `{"protocol":…,"version":1,"type":"listeners","listeners":[{name, kind, …}]}`, no fds
 * 3. server → taker: `fds` messages, each with the next (at most 253) fds, in
 *    the order of the list
 * 4. taker → server, once it serves: `{"protocol":…,"version":1,"type":"ready","names":[…]}`
 * 5. server → taker: `{"protocol":…,"version":1,"type":"done"}`, then the server closes
 *
 * Every message is JSON except the `fds` ones; every field is checked.
 */
import { MAX_FDS_PER_MESSAGE } from '../internal/native-constants'
import { protocolError } from '../internal/deadline'

/** The protocol's name, in every message. */
export const PROTOCOL = 'fdpass-listeners'
/** The protocol's version, in every message. */
export const VERSION = 1
/** The data of a message that carries fds. */
export const FDS_MESSAGE = 'fds'
/** The longest listener name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255
/** Largest JSON message either side accepts. */
export const MAX_MESSAGE_BYTES = 1024 * 1024
/** Fds per `fds` message. */
export const FDS_PER_MESSAGE = MAX_FDS_PER_MESSAGE

/** What a handed-over fd is, as the process that had it knew it. */
export type ListenerKind = 'tcp' | 'unix' | 'udp' | 'fdpass' | 'fd'

/** The metadata sent with each listener. */
export interface ListenerMetadata {
  /** The name it was served under. */
  name: string
  /**
   * What it was in the old process: `'tcp'` (a `net.Server` or `http.Server`
   * on an IP address), `'unix'` (a `net.Server` on a Unix socket path),
   * `'udp'` (a `dgram.Socket`), `'fdpass'` (an fdpass `FdServer`) or `'fd'`
   * (a bare fd number: the old process did not say what it is).
   */
  kind: ListenerKind
  /** The local IP address of a `'tcp'` or `'udp'` listener, e.g. `'127.0.0.1'`. */
  address?: string
  /** `'IPv4'` or `'IPv6'` for a `'tcp'` or `'udp'` listener. */
  family?: 'IPv4' | 'IPv6'
  /** The local port of a `'tcp'` or `'udp'` listener. */
  port?: number
  /** The socket path of a `'unix'` or `'fdpass'` listener (`''` when it has none, e.g. adopted). */
  path?: string
}

const KINDS: readonly ListenerKind[] = ['tcp', 'unix', 'udp', 'fdpass', 'fd']

/** Encodes a protocol message. */
export function encode(type: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ protocol: PROTOCOL, version: VERSION, type, ...fields })
}

/** Decodes a protocol message of the expected `type`, or throws ERR_FDPASS_PROTOCOL. */
export function decode(data: Buffer, fds: number, type: string, peer: string): Record<string, unknown> {
  if (fds !== 0) throw protocolError(`${peer} sent ${fds} fds with its '${type}' message`)
  let value: unknown
  try {
    value = JSON.parse(data.toString('utf8'))
  } catch {
    throw protocolError(`${peer} is not a listener handoff peer: its message is not JSON (expected '${type}')`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw protocolError(`${peer} is not a listener handoff peer: its message is not a JSON object`)
  }
  const message = value as Record<string, unknown>
  if (message.protocol !== PROTOCOL) {
    throw protocolError(`${peer} is not a listener handoff peer (protocol ${JSON.stringify(message.protocol)})`)
  }
  if (message.version !== VERSION) {
    throw protocolError(
      `${peer} speaks listener handoff version ${JSON.stringify(message.version)}; this fdpass speaks ${VERSION}`,
    )
  }
  if (message.type !== type) throw protocolError(`${peer} sent '${String(message.type)}' where '${type}' was expected`)
  return message
}

/** Checks a listener name (a key of the listeners object). */
export function nameIsValid(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name, 'utf8') <= MAX_NAME_BYTES
}

/** Checks the listener list of a `listeners` message, at most `max` entries, names unique. */
export function checkListenerList(value: unknown, max: number): ListenerMetadata[] {
  if (!Array.isArray(value)) throw protocolError('the old process sent no listener list')
  if (value.length === 0) throw protocolError('the old process sent an empty listener list')
  if (value.length > max) {
    throw protocolError(`the old process offers ${value.length} listeners, more than maxListeners (${max})`)
  }
  const names = new Set<string>()
  return value.map((entry: unknown, i): ListenerMetadata => {
    if (entry === null || typeof entry !== 'object') throw protocolError(`listener ${i} is not an object`)
    const e = entry as Record<string, unknown>
    if (typeof e.name !== 'string' || !nameIsValid(e.name)) throw protocolError(`listener ${i} has no valid name`)
    if (names.has(e.name)) throw protocolError(`listener name '${e.name}' appears twice`)
    names.add(e.name)
    if (!KINDS.includes(e.kind as ListenerKind)) throw protocolError(`listener '${e.name}' has an unknown kind`)
    const meta: ListenerMetadata = { name: e.name, kind: e.kind as ListenerKind }
    if (e.kind === 'tcp' || e.kind === 'udp') {
      if (typeof e.address !== 'string' || e.address.length > 64)
        throw protocolError(`listener '${e.name}' has no valid address`)
      if (e.family !== 'IPv4' && e.family !== 'IPv6') throw protocolError(`listener '${e.name}' has no valid family`)
      if (!Number.isInteger(e.port) || (e.port as number) < 0 || (e.port as number) > 65535) {
        throw protocolError(`listener '${e.name}' has no valid port`)
      }
      Object.assign(meta, { address: e.address, family: e.family, port: e.port })
    } else if (e.kind === 'unix' || e.kind === 'fdpass') {
      if (typeof e.path !== 'string' || e.path.length > 4096)
        throw protocolError(`listener '${e.name}' has no valid path`)
      meta.path = e.path
    }
    return meta
  })
}
