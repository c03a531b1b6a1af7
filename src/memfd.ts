/**
 * `memfd(name, size)`: anonymous shared memory as an fd, the thing a Wayland
 * `wl_shm` pool, a D-Bus memfd argument or an fd store needs and Node.js
 * cannot make (it has neither `memfd_create` nor `mmap`).
 */
import { Buffer } from 'node:buffer'
import { describe, makeError } from './errors'
import { native } from './internal/native'

/** The longest `name` {@link memfd} accepts, in UTF-8 bytes (Linux's `MFD_NAME_MAX_LEN`). */
export const MAX_MEMFD_NAME_BYTES = 249

/**
 * Creates `size` bytes of anonymous shared memory, zero-filled, and returns
 * its fd: close-on-exec, yours to close ({@link closeFds} or `fs.closeSync`).
 * Fill and read it with `fs.writeSync` / `fs.readSync` (with a position), send
 * it with {@link sendFds} or `FdSocket#send`; the peer maps it.
 *
 * - Linux: `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`, sized with
 *   `ftruncate`, then sealed with `F_SEAL_SHRINK`, so a peer that maps it can
 *   check (`F_GET_SEALS`) that it will never shrink under its mapping. It can
 *   still grow (`fs.ftruncateSync(fd, larger)`, e.g. for `wl_shm_pool.resize`);
 *   shrinking throws `EPERM`. `name` shows in `/proc/<pid>/fd` as
 *   `memfd:<name>`.
 * - macOS (no memfd; a POSIX `shm_open` object can be neither read nor
 *   written there, only mapped): a file created exclusively, mode 0600, in
 *   the user's temporary directory and unlinked at once. No seals; `name` is
 *   not used.
 *
 * Bad arguments throw a `TypeError` or `RangeError` before any syscall.
 *
 * @param name - a label for debugging, at most 249 UTF-8 bytes, no NUL.
 * @param size - the size in bytes: an integer from 0 to `Number.MAX_SAFE_INTEGER`.
 * @returns the new fd.
 *
 * @example
 * const fd = memfd('wl_shm', width * height * 4)
 * fs.writeSync(fd, pixels, 0, pixels.length, 0)
 * await socket.send(createPoolRequest, [fd])
 * closeFds([fd])
 */
export function memfd(name: string, size: number): number {
  if (typeof name !== 'string') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "name" argument must be of type string. Received ${describe(name)}`,
    )
  }
  if (name.includes('\0')) {
    throw makeError(TypeError, 'ERR_INVALID_ARG_VALUE', 'The "name" argument must not contain a NUL byte')
  }
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > MAX_MEMFD_NAME_BYTES) {
    throw makeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The "name" argument must be at most ${MAX_MEMFD_NAME_BYTES} bytes in UTF-8. Received ${bytes} bytes`,
    )
  }
  if (typeof size !== 'number') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "size" argument must be of type number. Received ${describe(size)}`,
    )
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw makeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The "size" argument must be an integer >= 0 and <= ${Number.MAX_SAFE_INTEGER}. Received ${size}`,
    )
  }
  return native.memfd(name, size)
}
