/** Small helpers for asserting how an async operation ended. */

/** The `code` of the error `promise` rejects with; undefined when it resolves. */
export async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return (err as NodeJS.ErrnoException).code
  }
  return undefined
}

/** Options for a receive or accept that gives up after `ms` (an AbortSignal). */
export const timeout = (ms = 10_000): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(ms) })

/**
 * Resolves after `turns` full turns of the event loop. A wait begun before
 * (a receive, a listener's accept) is watched by the loop's next poll phase,
 * and whatever is already in the kernel for it is read there; the check
 * phase after it runs this: two turns cover a call made from inside a poll
 * phase. An ordering of the loop, not a time.
 */
export async function loopTurns(turns = 2): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}
