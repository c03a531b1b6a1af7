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
