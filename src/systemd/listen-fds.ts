/**
 * Socket activation: the fds a service manager passed at start-up
 * (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`), as `sd_listen_fds(3)` and
 * `sd_listen_fds_with_names(3)` read them.
 */
import { makeError } from '../errors'
import { native } from '../internal/native'
import { optionsObject } from '../internal/validate'
import { environmentError, integerVariable, meantForThisProcess } from './environment'

/** The first fd a service manager passes (`SD_LISTEN_FDS_START`): the fds are 3, 4, 5, .... */
export const LISTEN_FDS_START = 3

/** Options of {@link listenFds} and {@link listenFdsByName}. */
export interface ListenFdsOptions {
  /**
   * Remove `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from
   * `process.env` (default `false`), so that child processes do not see them
   * and a second call finds nothing. As with `sd_listen_fds(1)`, they are
   * removed whether or not the call succeeds.
   */
  unsetEnvironment?: boolean
}

const VARIABLES = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const

function unsetOption(options: ListenFdsOptions | undefined): boolean {
  const opts = optionsObject(options, 'options') as ListenFdsOptions
  const unset = opts.unsetEnvironment ?? false
  if (typeof unset !== 'boolean') {
    throw makeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "unsetEnvironment" option must be of type boolean')
  }
  return unset
}

/** The fds and their names (`'unknown'` for each when `LISTEN_FDNAMES` is unset). */
function read(): { fds: number[]; names: string[] } {
  if (!meantForThisProcess('LISTEN_PID') || process.env.LISTEN_PID === undefined) return { fds: [], names: [] }
  const count = integerVariable('LISTEN_FDS', 'a number of fds') ?? 0
  if (count > 2 ** 31 - 1 - LISTEN_FDS_START) {
    throw environmentError('LISTEN_FDS', String(count), 'a number of fds this process can have')
  }
  const fds = Array.from({ length: count }, (_, i) => LISTEN_FDS_START + i)
  const namesValue = process.env.LISTEN_FDNAMES
  let names: string[]
  if (namesValue === undefined) {
    names = fds.map(() => 'unknown')
  } else {
    names = count === 0 ? [] : namesValue.split(':')
    if (names.length !== count) {
      throw environmentError('LISTEN_FDNAMES', namesValue, `${count} names separated by ':' (LISTEN_FDS=${count})`)
    }
  }
  // Close-on-exec, as sd_listen_fds does, so that a child process never
  // inherits them by accident. EBADF here means the manager passed fewer fds
  // than it said.
  native.setCloexec(fds)
  return { fds, names }
}

function withEnvironment<T>(options: ListenFdsOptions | undefined, fn: () => T): T {
  const unset = unsetOption(options)
  try {
    return fn()
  } finally {
    if (unset) for (const name of VARIABLES) delete process.env[name]
  }
}

/**
 * The fds passed by a service manager (systemd socket activation, or
 * `systemd-socket-activate`), in order: `[3, 4, ...]`, each set close-on-exec.
 * They are yours: adopt a listening socket with `net.Server#listen({ fd })`
 * (or `FdServer`), check one with `socketInfo`. An empty array when this
 * process was not started that way (`LISTEN_PID` unset, or naming another
 * process) — like `sd_listen_fds` returning 0.
 *
 * Throws `ERR_SYSTEMD_ENVIRONMENT` when `LISTEN_PID` or `LISTEN_FDS` is
 * malformed, `EBADF` (syscall `fcntl`) when one of the announced fds is not
 * open.
 *
 * @param options - `unsetEnvironment` (default `false`).
 * @returns the fds, starting at {@link LISTEN_FDS_START}.
 *
 * @example
 * const [fd] = listenFds()
 * if (fd !== undefined) http.createServer(handler).listen({ fd })
 * else http.createServer(handler).listen(8080)
 */
export function listenFds(options?: ListenFdsOptions): number[] {
  return withEnvironment(options, () => read().fds)
}

/**
 * The fds passed by a service manager, by name: the unit's
 * `FileDescriptorName=` (`--fdname=` of `systemd-socket-activate`), or the
 * names given to {@link storeFds} for fds kept in the fd store. An fd without
 * a name is under `'unknown'` (systemd's default for a socket unit is the
 * unit's name). Several fds may share a name; each list is in fd order.
 * An empty map when this process was not started by a service manager.
 *
 * Throws `ERR_SYSTEMD_ENVIRONMENT` when `LISTEN_FDNAMES` does not hold one
 * name per fd, and as {@link listenFds} does.
 *
 * @param options - `unsetEnvironment` (default `false`).
 * @returns a map from name to fds.
 *
 * @example
 * const fds = listenFdsByName()
 * const [http] = fds.get('http') ?? []
 * const [state] = fds.get('state') ?? [] // e.g. a memfd kept in the fd store
 */
export function listenFdsByName(options?: ListenFdsOptions): Map<string, number[]> {
  return withEnvironment(options, () => {
    const { fds, names } = read()
    const byName = new Map<string, number[]>()
    fds.forEach((fd, i) => {
      const name = names[i] as string
      const list = byName.get(name)
      if (list === undefined) byName.set(name, [fd])
      else list.push(fd)
    })
    return byName
  })
}
