/**
 * The path of a Unix stream socket as the stream face takes it: a filesystem
 * path, or on Linux an abstract name written with a leading `'\0'` or `'@'`
 * (the notation of `ss`, systemd and D-Bus tools), matched with its exact
 * length.
 */
import { describe, makeError } from '../errors'

/** Checks `path` and gives it in the form the native calls take (`'\0'` for abstract). */
export function socketPath(path: unknown): string {
  if (typeof path !== 'string') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "path" argument must be of type string. Received ${describe(path)}`,
    )
  }
  if (path.length === 0 || path === '@' || path === '\0') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_VALUE',
      'The "path" argument must name a socket: a path, or an abstract name after "\\0" or "@"',
    )
  }
  if (path[0] === '@' || path[0] === '\0') {
    if (process.platform !== 'linux') {
      throw makeError(
        Error,
        'ERR_FDPASS_UNSUPPORTED',
        `abstract socket names ("${path[0] === '@' ? '@' : '\\0'}...") exist only on Linux; use a filesystem path on ${process.platform}`,
      )
    }
    return `\0${path.slice(1)}`
  }
  return path
}
