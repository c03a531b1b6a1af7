/**
 * When a socket stops watching for messages. Once its last waiting
 * `receive()` is served nobody waits, but the code that handles the message
 * usually asks again at once: stopping the poll now and restarting it then
 * would cost two epoll_ctl calls per message. So the decision waits until
 * that code has run. That code runs as microtasks after the delivery, and
 * during an event-loop delivery the native side calls back once they have
 * run (see crates/fdpass-node/src/shared_buffers.rs), if asked: when the
 * code did ask again, the request was withdrawn and nothing runs at all.
 * Elsewhere (an aborted receive, say) setImmediate settles it.
 */
import { LOOP_FLAG_DELIVERING, LOOP_FLAG_SETTLE } from './native-constants'

/**
 * Shared with the native side: [LOOP_FLAG_DELIVERING] is 1 while an event-loop delivery
 * runs, its microtasks included; [LOOP_FLAG_SETTLE] asks it to call settleStops() once
 * they have run. Over an ArrayBuffer of its own: the native side keeps a
 * pointer to its memory, which V8 could move were it a small array's inline
 * storage.
 */
export const loopFlags = new Int32Array(new ArrayBuffer(8))

/** The settle functions of the sockets whose stop waits for the delivery to end. */
const pending: Array<() => void> = []

/** Runs `settle` once the code that handles the current delivery has run. */
export function deferStop(settle: () => void): void {
  if (loopFlags[LOOP_FLAG_DELIVERING] === 1) {
    pending.push(settle)
    loopFlags[LOOP_FLAG_SETTLE] = 1
  } else {
    setImmediate(settle).unref()
  }
}

/**
 * Withdraws a deferred stop: the socket is waited on again. (One left to
 * setImmediate still runs, and finds the socket wanted.)
 */
export function cancelStop(settle: () => void): void {
  const i = pending.lastIndexOf(settle)
  if (i < 0) return
  if (i === pending.length - 1) pending.pop()
  else pending.splice(i, 1)
  if (pending.length === 0) loopFlags[LOOP_FLAG_SETTLE] = 0
}

/**
 * Called by the native side after a delivery's microtasks, when asked. Every
 * socket is settled even if one throws; the first error is then rethrown.
 */
export function settleStops(): void {
  const due = pending.splice(0)
  loopFlags[LOOP_FLAG_SETTLE] = 0
  let failure: { error: unknown } | undefined
  for (const settle of due) {
    try {
      settle()
    } catch (error) {
      failure ??= { error }
    }
  }
  if (failure) throw failure.error
}
