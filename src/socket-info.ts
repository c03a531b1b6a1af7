/**
 * `socketInfo(fd)`: what a socket fd is — family, type, protocol, whether it
 * listens, and both ends' addresses — so a process that received an fd (from
 * a peer, a service manager or a parent) can check it before using it.
 */
import type { NativeSocketAddress } from '../binding'
import { native } from './internal/native'
import { validateFd } from './internal/validate'

/**
 * The address of one end of a socket, told apart by `kind`:
 *
 * - `'path'`: a Unix domain socket bound to a file (`path`).
 * - `'abstract'`: a Linux abstract Unix socket name (`name`, without the
 *   leading NUL byte that marks it; Node writes it as `'\0' + name`).
 * - `'unnamed'`: a Unix domain socket bound to nothing (a `socketPair` end, an
 *   unbound client).
 * - `'inet'` / `'inet6'`: an IP address and port (`address` as Node prints it,
 *   e.g. `'127.0.0.1'` or `'::1'`).
 * - `'other'`: an address of another family, not decoded.
 */
export type SocketAddress =
  | {
      kind: 'path'
      /** The socket file's path, decoded as UTF-8. */
      path: string
      /** The path's exact bytes (a path need not be valid UTF-8). */
      bytes: Buffer
    }
  | {
      kind: 'abstract'
      /** The abstract name without its leading NUL byte, decoded as UTF-8. */
      name: string
      /** The name's exact bytes (abstract names are often binary). */
      bytes: Buffer
    }
  | { kind: 'unnamed' }
  | {
      kind: 'inet'
      /** The IPv4 address, e.g. `'127.0.0.1'`. */
      address: string
      /** The port. */
      port: number
    }
  | {
      kind: 'inet6'
      /** The IPv6 address, e.g. `'::1'`. */
      address: string
      /** The port. */
      port: number
      /** The flow label (`sin6_flowinfo`). */
      flowinfo: number
      /** The scope id (`sin6_scope_id`, the interface index of a link-local address). */
      scopeId: number
    }
  | { kind: 'other' }

/** What {@link socketInfo} reports about a socket. */
export interface SocketInfo {
  /** The address family: `'unix'` (`AF_UNIX`), `'inet'`, `'inet6'`, or `'other'` (see `familyNumber`). */
  family: 'unix' | 'inet' | 'inet6' | 'other'
  /** The raw address family number (`AF_*`). */
  familyNumber: number
  /** The socket type: `'stream'`, `'dgram'`, `'seqpacket'`, `'raw'`, or `'other'` (see `typeNumber`). */
  type: 'stream' | 'dgram' | 'seqpacket' | 'raw' | 'other'
  /** The raw socket type number (`SOCK_*`). */
  typeNumber: number
  /** The protocol number: 6 for TCP, 17 for UDP, 0 for Unix domain sockets. */
  protocol: number
  /**
   * Whether the socket listens (`listen(2)` was called): it accepts
   * connections. Linux reads `SO_ACCEPTCONN`; macOS, whose `getsockopt` has
   * no such option, reads the same flag from the kernel's socket record
   * (`proc_pidfdinfo`, `soi_options & SO_ACCEPTCONN`).
   */
  listening: boolean
  /** The address the socket is bound to (`getsockname`). */
  local: SocketAddress
  /** The connected peer's address (`getpeername`), or `null` when not connected (listening, unconnected datagram). */
  peer: SocketAddress | null
}

function address(raw: NativeSocketAddress): SocketAddress {
  switch (raw.kind) {
    case 'path':
      return { kind: 'path', path: (raw.name as Buffer).toString('utf8'), bytes: raw.name as Buffer }
    case 'abstract':
      return { kind: 'abstract', name: (raw.name as Buffer).toString('utf8'), bytes: raw.name as Buffer }
    case 'unnamed':
      return { kind: 'unnamed' }
    case 'inet':
      return { kind: 'inet', address: raw.address as string, port: raw.port as number }
    case 'inet6':
      return {
        kind: 'inet6',
        address: raw.address as string,
        port: raw.port as number,
        flowinfo: raw.flowinfo as number,
        scopeId: raw.scopeId as number,
      }
    default:
      return { kind: 'other' }
  }
}

/**
 * Describes the socket `fd`: its family, type, protocol, whether it listens,
 * and its local and peer addresses. The fd stays yours; nothing about it
 * changes. Use it to check what a peer or a service manager handed you before
 * adopting it (`fdKind` only says "socket").
 *
 * - Linux: `getsockopt` `SO_TYPE`, `SO_DOMAIN`, `SO_PROTOCOL`,
 *   `SO_ACCEPTCONN`, then `getsockname` and `getpeername`.
 * - macOS has no `SO_DOMAIN` or `SO_PROTOCOL`, and its `getsockopt` does not
 *   answer `SO_ACCEPTCONN`: family, protocol and the listening flag come from
 *   the kernel's record of the socket, `proc_pidfdinfo(PROC_PIDFDSOCKETINFO)`
 *   (`soi_family`, `soi_protocol`, `soi_options & SO_ACCEPTCONN`), the
 *   source `lsof` reads.
 *
 * Throws `EBADF` (syscall `getsockopt`) when `fd` is not open, `ENOTSOCK`
 * when it is not a socket; a `TypeError` / `RangeError` for a value that
 * cannot be an fd, before any syscall.
 *
 * @param fd - an open socket fd.
 * @returns what the socket is.
 *
 * @example
 * const info = socketInfo(fd)
 * if (info.type !== 'stream' || !info.listening) throw new Error('expected a listening stream socket')
 * if (info.local.kind === 'inet') console.log(`listening on ${info.local.address}:${info.local.port}`)
 */
export function socketInfo(fd: number): SocketInfo {
  validateFd(fd, 'fd')
  const raw = native.socketInfo(fd)
  return {
    family: raw.family as SocketInfo['family'],
    familyNumber: raw.familyNumber,
    type: raw.type as SocketInfo['type'],
    typeNumber: raw.typeNumber,
    protocol: raw.protocol,
    listening: raw.listening,
    local: address(raw.local),
    peer: raw.peer === undefined || raw.peer === null ? null : address(raw.peer),
  }
}
