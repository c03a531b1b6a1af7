/**
 * Buffers shared with the native side, one set per copy of this module on a
 * thread (see crates/fdpass-node/src/shared_buffers.rs): received batches
 * arrive in `scratch` and `meta` without any object being created natively.
 * Registered on first use, with the flags of the deferred stops.
 */
import { Buffer } from 'node:buffer'
import { native } from './native'
import { loopFlags, settleStops } from './deferred-stops'
import { registerHeldFds } from './held-fds'
import { SHARED_META_SLOTS, SHARED_SCRATCH_BYTES } from './native-constants'

let scratch: Buffer | undefined
let meta: Int32Array | undefined
let buffersId = -1

/**
 * Registers the buffers with the native side, once per thread (and per copy
 * of this module: a test runner's fresh module registry makes another), and
 * returns their id, which the sockets of this copy are made with.
 */
export function ensureSharedBuffers(): number {
  if (scratch === undefined) {
    scratch = Buffer.allocUnsafeSlow(SHARED_SCRATCH_BYTES)
    meta = new Int32Array(SHARED_META_SLOTS)
    buffersId = native.initBuffers(scratch, meta, loopFlags, settleStops) as number
    registerHeldFds(buffersId)
  }
  return buffersId
}

// The batch being read: its `meta` ([count, (length, fd count, fds...)...])
// and payloads (back to back), whether the payloads are a fresh Buffer of
// its own (a batch too large for the shared buffers, handed over whole) that
// messages may share, and where the reader is in both.
let batchMeta: Int32Array = new Int32Array(1)
let batchData: Buffer = Buffer.alloc(0)
let batchIsFresh = false
let metaAt = 1
let dataAt = 0

/**
 * Starts reading a batch: by default the one the native side just wrote into
 * the shared buffers; else a batch it handed over as `data` and `meta`.
 */
export function beginBatch(data?: Buffer, batch?: Int32Array): void {
  batchIsFresh = data !== undefined
  batchData = data ?? (scratch as Buffer)
  batchMeta = batch ?? (meta as Int32Array)
  metaAt = 1
  dataAt = 0
}

/**
 * The next message of the current batch. The caller reads exactly the count
 * the batch holds (slot 0 of its meta, or what the native call returned).
 */
export function nextMessage(): { data: Buffer; fds: number[] } {
  const m = batchMeta
  const s = batchData
  const length = m[metaAt++] as number
  const fdCount = m[metaAt++] as number
  const fds = new Array<number>(fdCount)
  for (let f = 0; f < fdCount; f++) fds[f] = m[metaAt++] as number
  let data: Buffer
  if (batchIsFresh) data = s.subarray(dataAt, dataAt + length)
  else {
    // The shared scratch is overwritten by the next batch: copy. Small
    // payloads byte by byte, cheaper than Buffer#copy's subarray and set.
    data = Buffer.allocUnsafe(length)
    if (length <= 64) for (let i = 0; i < length; i++) data[i] = s[dataAt + i] as number
    else s.copy(data, 0, dataAt, dataAt + length)
  }
  dataAt += length
  return { data, fds }
}
