/**
 * The public types of the event-loop sockets: messages, options and peer
 * credentials, shared by `FdSocket`, `FdServer` and `connect` / `listen` /
 * `bind`.
 */

/** A message and the fds that came with it. The fds are yours to close. */
export interface FdMessage {
  /** The payload. */
  data: Buffer
  /** The fds that came with this message, in the order they were sent. */
  fds: number[]
}

/** Options of a socket. */
export interface SocketOptions {
  /**
   * Frame messages on a stream socket (default `true` for `'stream'`): each
   * `send` arrives as one message with exactly its own fds, whatever the
   * kernel merges or splits. Turn it off to talk to peers that do not speak
   * fdpass framing (C, Python, Go): each `recvmsg` is then delivered as it
   * came. Seqpacket and dgram sockets keep message boundaries natively and
   * are never framed.
   */
  framing?: boolean
  /**
   * The largest message accepted, in bytes (1 to 2^31 - 1, default 4194304, 4 MiB:
   * {@link DEFAULT_SOCKET_MAX_BYTES}). Memory grows with what arrives, not
   * with this limit. A framed peer announcing more is a protocol error that
   * closes the connection; a longer datagram is refused with
   * `ERR_MESSAGE_TRUNCATED`.
   */
  maxBytes?: number
  /** The most fds accepted per message (0 to 253, default 253). */
  maxFds?: number
  /**
   * How many messages may be read ahead of `receive()` calls (0 to 4096, default 16).
   * Beyond that the kernel's socket buffer holds them, so a peer flooding
   * fds cannot exhaust this process's fd table or memory.
   */
  readAhead?: number
  /**
   * The most received fds held for messages nobody has taken yet, and for a
   * framed message not complete yet (0 to 2^20, default 1024): reading ahead
   * stops there. A single read may pass it by at most one message's fds.
   */
  maxQueuedFds?: number
}

/** Options of {@link FdSocket.receive} and {@link FdServer.accept}. */
export interface ReceiveOptions {
  /** Aborts the wait; the promise rejects with an `AbortError`. */
  signal?: AbortSignal
}

/** Options of {@link FdSocket.receiveMany}. */
export interface ReceiveManyOptions extends ReceiveOptions {
  /** The most messages to take (1 to 4096, default 64). */
  max?: number
}

/** Credentials of the peer process, as the kernel recorded them at connect time. */
export interface PeerCredentials {
  /**
   * Process id (Linux: at connect time; macOS: the last process to use the
   * peer socket), or `undefined` when the kernel cannot tell (a peer in a PID
   * namespace this process cannot see, or no `LOCAL_PEERPID` on macOS). Can
   * be reused once that process exits: never authorize on it.
   */
  pid: number | undefined
  /** Effective user id: the value to base access decisions on. */
  uid: number
  /** Effective group id. */
  gid: number
}
