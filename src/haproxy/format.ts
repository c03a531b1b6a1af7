/**
 * HAProxy's `_getsocks` wire format (its stats socket, `expose-fd
 * listeners`; what `haproxy -x` reads): after the `_getsocks\n` command, a
 * native-endian 32-bit fd count in its own message, then batches, each one
 * `sendmsg` with at most 252 fds in one `SCM_RIGHTS` message and, per fd,
 * the namespace length (1 byte), namespace, interface length (1 byte),
 * interface, and 4 bytes of options (native-endian). The receiver sends a
 * 4-byte ack after each read; the sender waits for one after each full batch.
 */
import { endianness } from 'node:os'

/** The command a `haproxy -x` client sends. */
export const GETSOCKS_COMMAND = '_getsocks\n'
/** Fds per batch: HAProxy's `MAX_SEND_FD` (252 since 2022; 253 before, which this side also accepts). */
export const HAPROXY_FDS_PER_BATCH = 252
/** The most fds one received message may carry: the kernel's `SCM_MAX_FD`. */
export const MAX_FDS_PER_READ = 253
/** The largest metadata entry: 1 + 255 + 1 + 255 + 4 bytes. */
export const MAX_ENTRY_BYTES = 516

/** Bits of a socket's `options` in HAProxy's format (`SOCK_XFER_OPT_*`). */
export const HAPROXY_SOCKET_OPTIONS = Object.freeze({
  /** The socket binds a foreign (non-local) address (`transparent`). */
  FOREIGN: 1,
  /** An IPv6 socket with `IPV6_V6ONLY`. */
  V6ONLY: 2,
  /** A datagram (UDP, QUIC) socket. */
  DGRAM: 4,
})

const little = endianness() === 'LE'

/** Reads a native-endian unsigned 32-bit integer. */
export function readNative32(buf: Buffer, offset: number): number {
  return little ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset)
}

/** A native-endian unsigned 32-bit integer. */
export function native32(value: number): Buffer {
  const buf = Buffer.alloc(4)
  if (little) buf.writeUInt32LE(value >>> 0)
  else buf.writeUInt32BE(value >>> 0)
  return buf
}

/** One fd's metadata entry. */
export function encodeEntry(namespace: string, iface: string, options: number): Buffer {
  const ns = Buffer.from(namespace, 'utf8')
  const ifb = Buffer.from(iface, 'utf8')
  return Buffer.concat([Buffer.from([ns.length]), ns, Buffer.from([ifb.length]), ifb, native32(options)])
}

/** Parses one entry at `offset`, or returns undefined when the buffer does not hold it all yet. */
export function decodeEntry(
  buf: Buffer,
  offset: number,
): { namespace: string; iface: string; options: number; next: number } | undefined {
  if (offset >= buf.length) return undefined
  const nsLen = buf[offset]!
  const ifAt = offset + 1 + nsLen
  if (ifAt >= buf.length) return undefined
  const ifLen = buf[ifAt]!
  const optAt = ifAt + 1 + ifLen
  if (optAt + 4 > buf.length) return undefined
  return {
    namespace: buf.toString('utf8', offset + 1, ifAt),
    iface: buf.toString('utf8', ifAt + 1, optAt),
    options: readNative32(buf, optAt),
    next: optAt + 4,
  }
}
