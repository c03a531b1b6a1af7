/**
 * What the JavaScript runtime cannot do for fdpass. The event-loop sockets
 * (`FdSocket`, `FdServer`, `connect`, `listen`, `bind`) have the runtime's
 * libuv loop watch their fd (`uv_poll_t`, through Node-API). Bun implements
 * no `uv_poll_*` and aborts the whole process when an addon calls one
 * (oven-sh/bun#18546), so on Bun they refuse to start with a clear error
 * instead; the raw API, `SyncSocket` and `memfd` need no loop and work there.
 */
import { makeError } from './make-error'

/** The runtime whose loop cannot watch an fd, e.g. `'Bun 1.4.5'`; undefined on Node and Deno. */
export const noFdWatchRuntime: string | undefined =
  typeof process.versions.bun === 'string' ? `Bun ${process.versions.bun}` : undefined

/** Throws `ERR_FDPASS_UNSUPPORTED_RUNTIME` where the event-loop sockets cannot work; `what` names the call. */
export function assertEventLoopSockets(what: string): void {
  if (noFdWatchRuntime === undefined) return
  throw makeError(
    Error,
    'ERR_FDPASS_UNSUPPORTED_RUNTIME',
    `${what}: the event-loop sockets need libuv's uv_poll, which ${noFdWatchRuntime} does not implement ` +
      '(an addon that calls it aborts the process). On Bun use the raw API or SyncSocket ' +
      '(blocking: in a worker thread to keep the main thread free).',
  )
}
