/**
 * Talking to the service manager (`sd_notify(3)`): readiness, watchdog
 * keep-alives, and the fd store, over the datagram socket named by
 * `$NOTIFY_SOCKET`.
 */
import { Buffer } from 'node:buffer'
import { describe, makeError } from '../errors'
import { native } from '../internal/native'
import { validateFdList } from '../internal/validate'
import { integerVariable, meantForThisProcess } from './environment'

/** The longest fd name systemd accepts (`FDNAME=`, `FileDescriptorName=`), in characters. */
export const MAX_FDNAME_LENGTH = 255

/**
 * Sends a notification to the service manager: `state` is one or more
 * newline-separated `KEY=VALUE` assignments (`'READY=1'`,
 * `'STATUS=Loading'`, `'RELOADING=1'`, `'STOPPING=1'`, `'MAINPID=…'`,
 * `'EXTEND_TIMEOUT_USEC=…'`, …; see `sd_notify(3)`), and `fds`, if any,
 * travel with it as `SCM_RIGHTS` (for `FDSTORE=1`; prefer {@link storeFds}).
 *
 * One datagram to `$NOTIFY_SOCKET` (a socket path, or an `@` abstract name),
 * sent synchronously from a new close-on-exec socket, exactly as
 * `sd_notify` sends it: the manager reads the sender's pid, uid and gid
 * from the kernel (`SO_PASSCRED`); explicit `SCM_CREDENTIALS` are added, as
 * `sd_notify` adds them, when the real and effective ids differ. The fds
 * stay yours (the manager gets copies): close them when you no longer need
 * them.
 *
 * Not under a service manager (`NOTIFY_SOCKET` unset or empty), nothing is
 * sent and it returns `false`, as `sd_notify` returns 0: a program can call
 * it unconditionally.
 *
 * Errors: a `TypeError` / `RangeError` for a bad argument, before any
 * syscall; `ERR_INVALID_ARG_VALUE` for a `NOTIFY_SOCKET` form fdpass does
 * not speak (`vsock:`, a relative path), `EAFNOSUPPORT` for an `@` name on
 * macOS (no abstract names there); the `sendmsg` error otherwise
 * (`ENOENT` or `ECONNREFUSED`: nobody listens there any more; `EPERM`: the
 * manager refused the fds).
 *
 * @param state - the assignments, e.g. `'READY=1\nSTATUS=Serving'`.
 * @param fds - fds to pass with it (at most 253).
 * @returns `true` when sent, `false` when there is no service manager to tell.
 *
 * @example
 * notify('STATUS=Warming the cache')
 * await warmCache()
 * notify('READY=1\nSTATUS=Serving')
 */
export function notify(state: string, fds: readonly number[] = []): boolean {
  if (typeof state !== 'string') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "state" argument must be of type string. Received ${describe(state)}`,
    )
  }
  if (state === '' || state.includes('\0')) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_VALUE',
      'The "state" argument must be one or more KEY=VALUE lines, not empty and without NUL bytes',
    )
  }
  validateFdList(fds, 'fds')
  const socket = process.env.NOTIFY_SOCKET
  if (socket === undefined || socket === '') return false
  native.notifySend(Buffer.from(socket, 'utf8'), Buffer.from(state, 'utf8'), [...fds])
  return true
}

/**
 * Tells the service manager that start-up is finished (`READY=1`): a
 * `Type=notify` unit is "active" from then on, and units ordered after it
 * start.
 *
 * @returns `true` when sent, `false` when there is no service manager ({@link notify}).
 */
export function ready(): boolean {
  return notify('READY=1')
}

/**
 * How often the service manager expects {@link watchdog} keep-alives: the
 * unit's `WatchdogSec=`, from `WATCHDOG_USEC`, in milliseconds. `undefined`
 * when no watchdog is set for this process (`WATCHDOG_USEC` unset, or
 * `WATCHDOG_PID` naming another process). Ping at half this interval, as
 * `sd_watchdog_enabled(3)` advises.
 *
 * Throws `ERR_SYSTEMD_ENVIRONMENT` when `WATCHDOG_USEC` or `WATCHDOG_PID` is
 * malformed.
 *
 * @returns the interval in milliseconds, or `undefined`.
 *
 * @example
 * const interval = watchdogInterval()
 * if (interval !== undefined) setInterval(watchdog, interval / 2).unref()
 */
export function watchdogInterval(): number | undefined {
  if (!meantForThisProcess('WATCHDOG_PID')) return undefined
  const usec = integerVariable('WATCHDOG_USEC', 'a number of microseconds')
  if (usec === undefined || usec === 0) return undefined
  return usec / 1000
}

/**
 * Sends a watchdog keep-alive (`WATCHDOG=1`). With `WatchdogSec=` set, the
 * service manager restarts (or otherwise acts on) a service that misses
 * them; see {@link watchdogInterval}.
 *
 * @returns `true` when sent, `false` when there is no service manager ({@link notify}).
 */
export function watchdog(): boolean {
  return notify('WATCHDOG=1')
}

/** Checks an fd name as systemd does (`fdname_is_valid`), before any syscall. */
function validateFdName(name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "name" argument must be of type string. Received ${describe(name)}`,
    )
  }
  // Printable ASCII without ':' (the separator of LISTEN_FDNAMES); control
  // characters would end the FDNAME= line and inject other assignments.
  if (name.length === 0 || name.length > MAX_FDNAME_LENGTH || !/^[\x20-\x39\x3b-\x7e]+$/.test(name)) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_VALUE',
      `The "name" argument must be 1 to ${MAX_FDNAME_LENGTH} printable ASCII characters without ':'. Received ${describe(name)}`,
    )
  }
}

/**
 * Keeps `fds` in the service manager's fd store under `name`
 * (`FDSTORE=1` + `FDNAME=name`): they survive a restart of the service
 * (`systemctl restart`, a crash), and the next process gets them back with
 * {@link listenFdsByName} — a listening socket that never stops accepting, a
 * memfd holding state. The unit needs `FileDescriptorStoreMax=` (systemd
 * silently drops fds beyond it; 0, the default, stores none), and
 * `FileDescriptorStorePreserve=yes` to keep them across a stop.
 * The fds stay yours too: close your copies when done.
 *
 * @param name - 1 to 255 printable ASCII characters, no `':'` (systemd's
 *   rule); `ERR_INVALID_ARG_VALUE` otherwise, before any syscall.
 * @param fds - 1 to 253 fds.
 * @returns `true` when sent, `false` when there is no service manager ({@link notify}).
 *
 * @example
 * storeFds('http', [fdServer.fd]) // an FdServer, or a net.Server's handle fd
 * storeFds('state', [memfdHoldingState])
 */
export function storeFds(name: string, fds: readonly number[]): boolean {
  validateFdName(name)
  validateFdList(fds, 'fds')
  if (fds.length === 0) {
    throw makeError(TypeError, 'ERR_INVALID_ARG_VALUE', 'The "fds" argument must hold at least one fd to store')
  }
  return notify(`FDSTORE=1\nFDNAME=${name}`, fds)
}

/**
 * Removes every fd stored under `name` from the service manager's fd store
 * (`FDSTOREREMOVE=1` + `FDNAME=name`); the manager closes its copies.
 *
 * @param name - as for {@link storeFds}.
 * @returns `true` when sent, `false` when there is no service manager ({@link notify}).
 */
export function removeStoredFds(name: string): boolean {
  validateFdName(name)
  return notify(`FDSTOREREMOVE=1\nFDNAME=${name}`)
}
