/**
 * Building errors as Node's look (see the `FdpassError` type), and describing
 * a received value in an error message as Node does.
 */
import type { FdpassError } from '../errors'

type ErrorClass = new (message: string) => Error

/** Builds an error of `Class` with a `code` (and optional extra properties). */
export function makeError(
  Class: ErrorClass,
  code: string,
  message: string,
  extra?: Record<string, unknown>,
): FdpassError {
  const err = new Class(message) as FdpassError
  err.code = code
  if (extra !== undefined) Object.assign(err, extra)
  return err
}

/** Describes a value in an error message the way Node does. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name
    return name ? `an instance of ${name}` : 'an object'
  }
  let shown = String(value)
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  if (typeof value === 'string') shown = `'${shown}'`
  return `type ${typeof value} (${shown})`
}
