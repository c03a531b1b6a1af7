/**
 * Which errors end a connection, and what a receive error's message says
 * about the socket that met it.
 */
import type { FdpassError } from '../errors'
import type { SocketType } from '../raw'

/**
 * Send errors after which the connection is gone: like any receive error on a
 * stream, they destroy the socket. Others (`ETOOMANYREFS`, `ENOBUFS`, bad
 * arguments) concern one message and leave it open.
 */
const CONNECTION_ERRORS = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ENOTCONN'])

/** Whether a send error ends the connection. */
export function endsConnection(err: unknown): err is FdpassError {
  return err instanceof Error && CONNECTION_ERRORS.has((err as FdpassError).code)
}

/** Whether a receive error concerns one message only: a truncated datagram or seqpacket message. */
export function isPerMessage(error: FdpassError, type: SocketType): boolean {
  return type !== 'stream' && (error.code === 'ERR_MESSAGE_TRUNCATED' || error.code === 'ERR_FDS_TRUNCATED')
}

/**
 * Says, in a receive error's message, which socket met it and, for a framing
 * error, the option to change when the peer does not speak fdpass framing
 * (the core, which reports it, does not know the socket's type).
 */
export function nameSocket(error: FdpassError, type: SocketType, framing: boolean): void {
  if (error.code === 'ERR_MESSAGE_TRUNCATED' || error.code === 'ERR_FDS_TRUNCATED') {
    error.message = `${error.message} (on a ${framing ? 'framed stream' : type} socket)`
  } else if (error.code === 'ERR_FDPASS_PROTOCOL') {
    error.message = `${error.message} (a framed stream socket: if the peer does not speak fdpass framing, as a C, Python or Go peer, set the framing option to false)`
  }
}
