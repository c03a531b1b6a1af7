/**
 * The fds this copy of fdpass holds for its user: those of messages read
 * ahead that no `receive()` has taken yet. One byte per fd number, shared
 * with the native side (crates/fdpass-node/src/held_fds.rs), which closes
 * every fd still marked if the thread's environment ends without JavaScript
 * running again (a worker terminated at any point). Marking costs a store
 * per fd, and only for messages that wait in a queue.
 */
import { native } from './native'

let marks = new Uint8Array(0)
let id = -1

/** Marks `fds` as held by fdpass. */
export function hold(fds: readonly number[]): void {
  for (const fd of fds) {
    if (fd >= marks.length) grow(fd)
    marks[fd] = 1
  }
}

/** Unmarks `fds`: handed to the user, or closed. */
export function release(fds: readonly number[]): void {
  for (const fd of fds) if (fd < marks.length) marks[fd] = 0
}

function grow(fd: number): void {
  let length = Math.max(marks.length, 1024)
  while (length <= fd) length *= 2
  // Over an ArrayBuffer of its own: the native side keeps a pointer to it.
  const next = new Uint8Array(new ArrayBuffer(length))
  next.set(marks)
  id = native.registerHeldFds(id, next) as number
  marks = next
}
