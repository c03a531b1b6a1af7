/**
 * Buffers shared with the native side, one set per JavaScript thread (see
 * crates/fdpass-node/src/shared_buffers.rs): received batches arrive in
 * `scratch` and `meta` without any object being created natively.
 * Registered on first use.
 */
import { native } from './native'

let scratch: Buffer | undefined
let meta: Int32Array | undefined

/** Registers the buffers with the native side, once per thread. */
export function ensureSharedBuffers(): void {
  if (scratch !== undefined) return
  scratch = Buffer.allocUnsafeSlow(256 * 1024)
  meta = new Int32Array(16 * 1024)
  native.initBuffers(scratch, meta)
}

/**
 * Calls `each(data, fds)` for the `count` messages of the batch the native
 * side just wrote: `meta` holds [count, (length, fd count, fds...)...].
 */
export function readBatch(count: number, each: (data: Buffer, fds: number[]) => void): void {
  const m = meta as Int32Array
  const s = scratch as Buffer
  let offset = 0
  let i = 1
  for (let k = 0; k < count; k++) {
    const length = m[i++] as number
    const fdCount = m[i++] as number
    const fds = new Array<number>(fdCount)
    for (let f = 0; f < fdCount; f++) fds[f] = m[i++] as number
    const data = Buffer.allocUnsafe(length)
    s.copy(data, 0, offset, offset + length)
    offset += length
    each(data, fds)
  }
}
