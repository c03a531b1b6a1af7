/**
 * Reading the variables a service manager sets, the way libsystemd does:
 * a variable meant for another process (`LISTEN_PID`, `WATCHDOG_PID`) is not
 * an error but "not for us"; a malformed one is an error.
 */
import { makeError, type FdpassError } from '../errors'

/** The error for a malformed service manager variable. */
export function environmentError(name: string, value: string, expected: string): FdpassError {
  return makeError(
    Error,
    'ERR_SYSTEMD_ENVIRONMENT',
    `${name}=${JSON.stringify(value)} is not ${expected}: the service manager (or whoever set it) passed a malformed value`,
  )
}

/** Parses a non-negative decimal integer variable; `undefined` when unset or empty. */
export function integerVariable(name: string, expected: string): number | undefined {
  const value = process.env[name]
  if (value === undefined || value === '') return undefined
  if (!/^[0-9]{1,15}$/.test(value)) throw environmentError(name, value, expected)
  return Number(value)
}

/** Whether a `*_PID` variable names this process (an unset one names every process). */
export function meantForThisProcess(name: string): boolean {
  const pid = integerVariable(name, 'a process id')
  return pid === undefined || pid === process.pid
}
