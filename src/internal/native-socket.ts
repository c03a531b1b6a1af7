/**
 * The native object behind an `FdSocket` or `FdServer`
 * (crates/fdpass-node/src/socket.rs): it owns the fd, watches it on the
 * event loop and calls back with events (see `Ev` in constants.ts).
 */
import type { PeerCredentials } from '../socket-types'
import { native } from './native'
import type { SocketType } from '../raw'

/** The native socket as the TypeScript layer uses it. */
export interface NativeSocketHandle {
  readonly fd: number
  readonly writableLength: number
  /** Its id in this thread's socket table, which the lean per-message calls take (see lean.ts). */
  readonly id: number
  /** How many messages (or connections) and fds the event loop may read before JavaScript takes them. */
  setReading(room: number, fdRoom: number): void
  setRef(refed: boolean): void
  peerCredentials(): PeerCredentials
  close(): void
}

/** The callback of a native socket: an event code (`Ev`) and its two values. */
export type NativeCallback = (kind: number, a: unknown, b: unknown) => void

/** What a connected socket's native side needs to know. */
export interface ConnectionLimits {
  framing: boolean
  maxBytes: number
  maxFds: number
}

/**
 * Makes the native socket that owns `fd` from now on, failure included.
 * `limits` for a connection, undefined for a listener. The native side holds
 * `callback` only weakly while the socket is idle (so that an idle,
 * unreachable socket can be collected): its owner must keep it alive.
 */
export function openNativeSocket(
  fd: number,
  type: SocketType,
  limits: ConnectionLimits | undefined,
  callback: NativeCallback,
  buffers: number,
): NativeSocketHandle {
  return new native.NativeSocket(
    fd,
    type,
    limits === undefined,
    limits?.framing ?? false,
    limits?.maxBytes ?? 1,
    limits?.maxFds ?? 0,
    callback,
    buffers,
  ) as NativeSocketHandle
}
