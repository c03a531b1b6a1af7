/**
 * One AbortSignal for a whole exchange with a peer: the caller's `signal`
 * and a time limit, so that a peer that stops answering cannot hang it.
 */
import { constants } from 'node:os'

import type { FdpassError } from '../errors'
import { makeError } from './make-error'

/** A signal that aborts on the caller's signal or after `ms`; `dispose()` stops the timer. */
export interface Deadline {
  readonly signal: AbortSignal
  /** Whether it was the time limit (not the caller's signal) that aborted. */
  timedOut(): boolean
  dispose(): void
}

/** Starts a deadline of `ms` milliseconds (0: no time limit) that also follows `signal`. */
export function startDeadline(signal: AbortSignal | undefined, ms: number): Deadline {
  const controller = new AbortController()
  let expired = false
  const onAbort = () => controller.abort(signal?.reason)
  if (signal?.aborted) controller.abort(signal.reason)
  else signal?.addEventListener('abort', onAbort, { once: true })
  const timer =
    ms > 0
      ? setTimeout(() => {
          expired = true
          controller.abort()
        }, ms)
      : undefined

  return {
    signal: controller.signal,
    timedOut: () => expired,
    dispose() {
      if (timer) clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    },
  }
}

/** `ETIMEDOUT` for a peer that did not answer within `ms`. */
export function timeoutError(what: string, ms: number, advice: string): FdpassError {
  return makeError(Error, 'ETIMEDOUT', `${what}: no answer within ${ms} ms (the timeout option); ${advice}`, {
    errno: -constants.errno.ETIMEDOUT,
    syscall: 'recvmsg',
  })
}

/** An `AbortError` for a caller's aborted signal, as Node's own APIs reject. */
export function abortedError(signal: AbortSignal | undefined): FdpassError {
  const err = makeError(Error, 'ABORT_ERR', 'The operation was aborted', { cause: signal?.reason })
  err.name = 'AbortError'
  return err
}

/**
 * `promise`, or an `AbortError` as soon as `signal` aborts, whichever comes
 * first (the work behind `promise` goes on; only this wait ends).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(abortedError(signal))
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** `ERR_FDPASS_PROTOCOL`: the peer broke the protocol. */
export function protocolError(message: string): FdpassError {
  return makeError(Error, 'ERR_FDPASS_PROTOCOL', message)
}
