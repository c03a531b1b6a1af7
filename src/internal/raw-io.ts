/**
 * The raw calls on a socket number whose fd argument is checked already:
 * one `sendmsg` or `recvmsg` through the lean calls' scratch (see lean.ts).
 * `sendFds` / `recvFds` and `SyncSocket` are their public faces.
 */
import { Buffer } from 'node:buffer'

import type { SocketType } from '../raw'
// Straight from the generated module: a re-export compiles to a getter.
import { DEFAULT_MAX_BYTES, MAX_FDS_PER_MESSAGE, SCRATCH_DATA_BYTES } from './native-constants'
import {
  copyToScratch,
  enterStaging,
  isFdNumber,
  lean,
  leaveStaging,
  scratchData,
  scratchFds,
  scratchInts,
  SMALL_COPY,
  stagedToScratch,
} from './lean'
import { native } from './native'
import { emptyDataError, integerOption, optionsObject, toBytes, validateFd, validateFdList } from './validate'

/** The largest `maxBytes` of a raw receive. */
const MAX_BYTES_LIMIT = 2 ** 31 - 1

/** The options of a raw receive (`RecvFdsOptions`), unchecked. */
interface RecvOptions {
  maxBytes?: number
  maxFds?: number
}

/**
 * `sendFds` on a checked socket number. `checkUnix` false skips the per-send
 * `AF_UNIX` check, for a socket `SyncSocket` checked when it took ownership.
 */
export function sendOn(
  socket: number,
  data: Uint8Array | string,
  fds: readonly number[] | undefined,
  checkUnix: boolean,
  type?: SocketType,
): number {
  const bytes = toBytes(data, 'data')
  let count = 0
  if (fds !== undefined) {
    if (!Array.isArray(fds)) validateFdList(fds, 'fds') // throws the usual TypeError
    count = fds.length // read once: a Proxy could answer differently each time
    if (count > MAX_FDS_PER_MESSAGE) validateFdList(fds, 'fds') // throws ERR_TOO_MANY_FDS
    // Each element is read once, validated and staged (see enterStaging).
    const staged = enterStaging()
    try {
      for (let i = 0; i < count; i++) {
        const fd: unknown = fds[i]
        // The element's name is built only for the error message.
        if (!isFdNumber(fd)) validateFd(fd, `fds[${i}]`)
        staged[i] = fd as number
      }
      stagedToScratch(staged, count)
    } finally {
      leaveStaging()
    }
  }
  if (count > 0 && bytes.length === 0) throw emptyDataError(type)
  scratchInts[0] = socket
  if (bytes.length > SMALL_COPY) {
    scratchInts[1] = count
    if (checkUnix) lean.sendFds(bytes)
    else lean.sendOwned(bytes)
  } else {
    scratchInts[1] = copyToScratch(bytes)
    scratchInts[2] = count
    if (checkUnix) lean.sendScratch()
    else lean.sendOwnedScratch()
  }
  return scratchInts[0]!
}

/** `recvFds` on a checked socket number. */
export function receiveOn(socket: number, options: RecvOptions | undefined): { data: Buffer; fds: number[] } {
  let maxBytes = DEFAULT_MAX_BYTES
  let maxFds = MAX_FDS_PER_MESSAGE
  if (options !== undefined) {
    const opts = optionsObject(options, 'options')
    maxBytes = integerOption(opts.maxBytes, 'maxBytes', 1, MAX_BYTES_LIMIT, DEFAULT_MAX_BYTES)
    maxFds = integerOption(opts.maxFds, 'maxFds', 0, MAX_FDS_PER_MESSAGE, MAX_FDS_PER_MESSAGE)
  }
  if (maxBytes > SCRATCH_DATA_BYTES) return native.recvFds(socket, maxBytes, maxFds)
  scratchInts[0] = socket
  scratchInts[1] = maxBytes
  scratchInts[2] = maxFds
  lean.recvFds()
  const len = scratchInts[0]!
  // The fds are ours from here: nothing below can throw.
  const count = scratchFds[0]!
  const received: number[] = new Array(count)
  for (let i = 0; i < count; i++) received[i] = scratchFds[i + 1]!
  const bytes = Buffer.allocUnsafe(len)
  if (len <= SMALL_COPY) for (let i = 0; i < len; i++) bytes[i] = scratchData[i]!
  else bytes.set(scratchData.subarray(0, len))
  return { data: bytes, fds: received }
}
