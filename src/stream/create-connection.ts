/** `createConnection(path)`: the stream face's `net.createConnection`. */
import { makeError } from '../errors'
import { FdStream, type FdStreamOptions } from './fd-stream'

/**
 * Connects an {@link FdStream} to the stream socket at `path` (a leading
 * `'\0'` or `'@'` names a Linux abstract socket) and returns it at once;
 * `'connect'` follows (and `listener` is called), or `'error'`. Writes made
 * before it connects go out in order once it has.
 */
export function createConnection(
  path: string,
  options?: FdStreamOptions | (() => void),
  listener?: () => void,
): FdStream {
  if (typeof options === 'function') {
    listener = options
    options = undefined
  }
  if (listener !== undefined && typeof listener !== 'function') {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "listener" argument must be a function')
  }
  return new FdStream(options).connect(path, listener)
}
