/**
 * The fds this copy of fdpass holds for its user: those of every received
 * batch, from the moment the native side hands it over (and marks them)
 * until a message is handed to the user's code, or its fds are closed. One
 * byte per fd number, shared with the native side
 * (crates/fdpass-node/src/held_fds.rs), which closes every fd still marked
 * if the thread's environment ends without JavaScript running again (a
 * worker terminated at any point, even in the middle of a batch). Releasing
 * costs a store per fd.
 */
import { native } from './native'

let marks = new Uint8Array(0)
let buffersId = -1

/** Registers the marks under the id of this copy's shared buffers. */
export function registerHeldFds(id: number): void {
  buffersId = id
  grow(1023)
}

/** Unmarks `fds`: handed to the user, or closed. */
export function release(fds: readonly number[]): void {
  for (const fd of fds) {
    // A held fd past the array is kept natively until the array grows.
    if (fd >= marks.length && buffersId >= 0) grow(fd)
    marks[fd] = 0
  }
}

/**
 * Closes `fds` (fds nobody took) and unmarks them in one native call, which
 * a worker's termination cannot split: unmarked first and then terminated,
 * they would leak; closed first, the teardown would close their numbers
 * again, which another thread may have reused. Errors are ignored (an fd
 * its owner closed already).
 */
export function closeHeld(fds: number[]): void {
  native.closeHeldFds(buffersId, fds)
}

function grow(fd: number): void {
  let length = Math.max(marks.length, 1024)
  while (length <= fd) length *= 2
  // Over an ArrayBuffer of its own: the native side keeps a pointer to it.
  const next = new Uint8Array(new ArrayBuffer(length))
  next.set(marks)
  native.registerHeldFds(buffersId, next)
  marks = next
}
