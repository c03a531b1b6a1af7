/**
 * Pending `receive()` / `accept()` calls and async iterators over them, shared
 * by `FdSocket` and `FdServer`.
 */
import type { FdpassError } from '../errors'
import { makeError } from './make-error'

/** A pending wait for the next item. */
export interface Waiter<T> {
  resolve(item: T | undefined): void
  reject(error: Error): void
  /** An iterator's next(): ERR_SOCKET_CLOSED ends it instead of rejecting. */
  iterating: boolean
  signal?: AbortSignal
  onAbort?: () => void
  /**
   * A wait for several items (`receiveMany`): it takes every item handed
   * over in one go, up to `max`, and resolves with them as an array.
   */
  many?: { max: number; items: T[] }
}

/** `ERR_SOCKET_CLOSED`, as Node names it. */
export function closedError(reason: string): FdpassError {
  return makeError(Error, 'ERR_SOCKET_CLOSED', reason)
}

/** An `AbortError` for an aborted wait, as Node's own APIs reject. */
export function abortError(signal: AbortSignal): Error {
  const err = makeError(Error, 'ABORT_ERR', 'The operation was aborted', { cause: signal.reason })
  err.name = 'AbortError'
  return err
}

/**
 * Queues a wait on `waiters`; an abort of `signal` removes it and rejects it
 * with an AbortError. `changed` runs whenever the queue grows or shrinks.
 */
export function wait<T>(
  waiters: Waiter<T>[],
  iterating: boolean,
  signal: AbortSignal | undefined,
  changed: () => void,
  many?: number,
): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const waiter: Waiter<T> = { resolve, reject, iterating, signal }
    if (many !== undefined) waiter.many = { max: many, items: [] }
    if (signal) {
      waiter.onAbort = () => {
        const i = waiters.indexOf(waiter)
        if (i >= 0) waiters.splice(i, 1)
        changed()
        reject(abortError(signal))
      }
      signal.addEventListener('abort', waiter.onAbort, { once: true })
    }
    waiters.push(waiter)
    changed()
  })
}

/**
 * Settles a wait with an item, or with an error. An iterator's wait ends
 * (resolves undefined) on ERR_SOCKET_CLOSED unless `always` asks to reject.
 */
export function settle<T>(waiter: Waiter<T>, item: T | undefined, error: Error | undefined, always = false): void {
  if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort)
  // A wait for several items resolves with what it collected.
  if (waiter.many && waiter.many.items.length > 0) waiter.resolve(waiter.many.items as unknown as T)
  else if (item !== undefined) waiter.resolve(item)
  else if (waiter.iterating && !always && (error as FdpassError | undefined)?.code === 'ERR_SOCKET_CLOSED') {
    waiter.resolve(undefined)
  } else waiter.reject(error ?? closedError('the socket was closed'))
}

/** An async iterator over `next(true)`, done when it yields undefined. */
export function iterate<T>(next: (iterating: boolean) => Promise<T | undefined>): AsyncIterator<T> {
  return {
    next: async (): Promise<IteratorResult<T>> => {
      const item = await next(true)
      return item === undefined ? { done: true, value: undefined } : { done: false, value: item }
    },
    return: async (): Promise<IteratorResult<T>> => ({ done: true, value: undefined }),
  }
}
