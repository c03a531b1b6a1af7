/**
 * The lean calls (why: crates/fdpass-node/src/lean.rs; the scratch's layout and
 * the calls on it: crates/fdpass/src/scratch.rs): the per-message native
 * functions are plain napi callbacks, and integer arguments and results, fd
 * numbers and small payloads cross into and out of native code through one
 * scratch ArrayBuffer of this environment: write the integers into
 * `scratchInts`, call, read the result from `scratchInts[0]`. The scratch
 * never leaves fdpass.
 */
import { SCRATCH_DATA_BYTES, SCRATCH_FD_BYTES, SCRATCH_FD_SLOTS, SCRATCH_INT_SLOTS } from './native-constants'
import { native } from './native'

export const lean = native.bindLean()
const scratch = lean.scratch
if (scratch.byteLength !== SCRATCH_FD_BYTES + SCRATCH_DATA_BYTES + SCRATCH_INT_SLOTS * 4) {
  throw new Error('fdpass: the native addon does not match this JavaScript build (scratch size)')
}
/** The fd slots: what a send sends and closeFds closes; where recvFds writes its fds. */
export const scratchFds = new Int32Array(scratch, 0, SCRATCH_FD_SLOTS)
/** The data area: received bytes, or a small payload to send. */
export const scratchData = new Uint8Array(scratch, SCRATCH_FD_BYTES, SCRATCH_DATA_BYTES)
/** Integer arguments of a call; slot 0 holds its result afterwards. */
export const scratchInts = new Int32Array(scratch, SCRATCH_FD_BYTES + SCRATCH_DATA_BYTES, SCRATCH_INT_SLOTS)

/**
 * Staging areas for the fds of one call, one per nesting depth. Reading the
 * fds of a call can run user code (an `fd` getter, a Proxy array) that makes
 * another call through the scratch; writing fds straight into `scratchFds`
 * would let that inner call overwrite slots the outer call already filled, and
 * the peer would get an fd the caller never passed. So a call reads its fds
 * into the staging area of its depth and copies them into the scratch only
 * once no more user code can run (`stagedToScratch`).
 */
const stagingAreas: Int32Array[] = []
let stagingDepth = 0

/** The staging area of a new nesting level; pair every call with `leaveStaging` (in a `finally`). */
export function enterStaging(): Int32Array {
  let area = stagingAreas[stagingDepth]
  if (area === undefined) stagingAreas[stagingDepth] = area = new Int32Array(SCRATCH_FD_SLOTS)
  stagingDepth++
  return area
}

/** Ends the nesting level `enterStaging` began. */
export function leaveStaging(): void {
  stagingDepth--
}

/** Copies `count` staged fds into the scratch's fd slots. Runs no user code. */
export function stagedToScratch(area: Int32Array, count: number): void {
  for (let i = 0; i < count; i++) scratchFds[i] = area[i]!
}

/** Copies below this size go byte by byte: cheaper than a subarray and set. */
export const SMALL_COPY = 64

/** Whether `value` is an fd number (what validateFd accepts), without building its name. */
export function isFdNumber(value: unknown): boolean {
  return typeof value === 'number' && (value | 0) === value && value >= 0
}

/** Copies a small payload into the data area (the caller checked `bytes.length <= SMALL_COPY`). */
export function copyToScratch(bytes: Uint8Array): number {
  const len = bytes.length
  for (let i = 0; i < len; i++) scratchData[i] = bytes[i]!
  return len
}
