/**
 * Who holds a received fd: fdpass, until a message is handed to the user's
 * code (see held-fds.ts), or nobody, once fdpass closes the fds of messages
 * nobody took.
 */
import type { FdMessage } from '../socket-types'
import { closeHeld, release } from './held-fds'
import type { Queue } from './queue'

/** Closes the fds of messages nobody took. */
export function closeQuietly(fds: number[]): void {
  if (fds.length > 0) closeHeld(fds)
}

/** A message handed to the user's code: its fds are theirs from now on (see held-fds.ts). */
export function handOver(message: FdMessage): FdMessage {
  if (message.fds.length > 0) release(message.fds)
  return message
}

/**
 * {@link handOver} for a message that settles a waiting receive: its fds stay
 * marked until the microtask queued here, which runs after the rest of this
 * delivery and just before the receiver's own code (queued before the
 * settle, so before its reaction). A worker terminated meanwhile has them
 * closed.
 */
export function handOverSoon(message: FdMessage): FdMessage {
  if (message.fds.length > 0) queueMicrotask(() => release(message.fds))
  return message
}

/**
 * Closes the fds of read-ahead messages of a socket that was garbage-collected
 * without close() (the native side closes the socket itself). The held value
 * is the message queue, which does not refer back to the socket.
 */
export const closeUnreadOnCollect = new FinalizationRegistry<Queue<FdMessage | Error>>((messages) => {
  for (const item of messages.drain()) if (!(item instanceof Error)) closeQuietly(item.fds)
})
