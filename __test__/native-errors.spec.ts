/**
 * The native addon's own failures look like Node's errors, never napi's
 * bare `GenericFailure`: internal calls made with arguments fdpass's
 * JavaScript never passes (a mismatched build) throw an `Error` with
 * `code: 'ERR_FDPASS_INTERNAL'` and a message that says what to do.
 */
import test, { type ExecutionContext } from 'ava'
import * as path from 'node:path'

interface Lean {
  scratch: ArrayBuffer
  socketRead(): void
  socketSendScratch(): void
  closeFds(): void
}

interface Native {
  bindLean(): Lean
  initBuffers(scratch: unknown, meta: unknown, flags: unknown, settle: unknown): number
  registerHeldFds(id: number, marks: unknown): void
}

// The addon itself, below the TypeScript layer that validates every argument.
const native = require(path.join(__dirname, '..', 'binding.js')) as Native

function internal(t: ExecutionContext, fn: () => unknown, what: string): void {
  const err = t.throws(fn, { instanceOf: Error }, what) as NodeJS.ErrnoException | undefined
  t.is(err?.code, 'ERR_FDPASS_INTERNAL', what)
  t.regex(err?.message ?? '', /reinstall fdpass/, what)
}

test('lean calls naming no socket, or out-of-range counts, throw ERR_FDPASS_INTERNAL', (t) => {
  const lean = native.bindLean()
  const ints = new Int32Array(lean.scratch, lean.scratch.byteLength - 16, 4)
  ints.set([0x7ffff, 1, 1, 0])
  internal(t, () => lean.socketRead(), 'socketRead of a socket id that names nothing')
  internal(t, () => lean.socketSendScratch(), 'socketSendScratch of a socket id that names nothing')
  ints.set([1_000_000, 0, 0, 0])
  internal(t, () => lean.closeFds(), 'closeFds of more fds than the scratch holds')
})

test('registering shared buffers with values that are not typed arrays throws ERR_FDPASS_INTERNAL', (t) => {
  internal(t, () => native.initBuffers('a', 'b', 'c', 'd'), 'initBuffers')
  internal(t, () => native.registerHeldFds(12345, 'not a Uint8Array'), 'registerHeldFds')
})
