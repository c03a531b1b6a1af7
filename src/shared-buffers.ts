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

// Where the reader of the current batch is: the next meta slot and the
// offset of the next payload in the scratch.
let metaAt = 1
let dataAt = 0

/** Starts reading the batch the native side just wrote into the shared buffers. */
export function beginBatch(): void {
  metaAt = 1
  dataAt = 0
}

/**
 * The next message of the current batch: `meta` holds [count, (length, fd
 * count, fds...)...] and `scratch` the payloads back to back. The caller
 * reads exactly the count the native call returned.
 */
export function nextMessage(): { data: Buffer; fds: number[] } {
  const m = meta as Int32Array
  const s = scratch as Buffer
  const length = m[metaAt++] as number
  const fdCount = m[metaAt++] as number
  const fds = new Array<number>(fdCount)
  for (let f = 0; f < fdCount; f++) fds[f] = m[metaAt++] as number
  const data = Buffer.allocUnsafe(length)
  // Small payloads byte by byte: cheaper than Buffer#copy's subarray and set.
  if (length <= 64) for (let i = 0; i < length; i++) data[i] = s[dataAt + i] as number
  else s.copy(data, 0, dataAt, dataAt + length)
  dataAt += length
  return { data, fds }
}
