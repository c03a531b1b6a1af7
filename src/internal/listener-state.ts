/**
 * What the kernel says about a socket fdpass is asked to adopt as a
 * listener: whether it listens, and whether it is non-blocking (accept has
 * no per-call non-blocking flag, so that decides how a server may accept).
 *
 * Linux answers through /proc: the socket's inode (`fstat`) names its line
 * in /proc/self/net/unix, whose flags have `__SO_ACCEPTCON` once it listens;
 * /proc/self/fdinfo has the fd's file status flags. Where there is no /proc
 * (macOS), or the socket belongs to another network namespace (its line is
 * then elsewhere), the answers are `undefined`: unknown. Reading them runs
 * no syscall on the socket itself and changes nothing about it.
 */
import * as fs from 'node:fs'

/** What is known of a socket's listening state; `undefined` where the platform cannot tell. */
export interface ListenerState {
  /** Whether `listen()` was called on it. */
  listening: boolean | undefined
  /** Whether its open file description has `O_NONBLOCK`. */
  nonBlocking: boolean | undefined
}

/** Linux's `__SO_ACCEPTCON`, the flag /proc/net/unix shows for a listening socket. */
const SO_ACCEPTCON = 0x10000
/** Linux's `O_NONBLOCK` (octal 04000 in /proc's fdinfo flags) on every architecture fdpass ships for. */
const O_NONBLOCK = 0o4000

/** The listening state of the socket `fd` (a socket already checked to be `AF_UNIX`). */
export function listenerState(fd: number): ListenerState {
  if (process.platform !== 'linux') return { listening: undefined, nonBlocking: undefined }
  return { listening: listeningFromProc(fd), nonBlocking: nonBlockingFromProc(fd) }
}

function listeningFromProc(fd: number): boolean | undefined {
  let inode: string
  let table: string
  try {
    inode = String(fs.fstatSync(fd).ino)
    table = fs.readFileSync('/proc/self/net/unix', 'latin1')
  } catch {
    return undefined
  }
  // Lines: "Num RefCount Protocol Flags Type St Inode [Path]", numbers in hex but the inode.
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/)
    if (fields[6] === inode) return (parseInt(fields[3] ?? '0', 16) & SO_ACCEPTCON) !== 0
  }
  return undefined
}

function nonBlockingFromProc(fd: number): boolean | undefined {
  let info: string
  try {
    info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1')
  } catch {
    return undefined
  }
  const flags = /^flags:\s*([0-7]+)$/m.exec(info)?.[1]
  return flags === undefined ? undefined : (parseInt(flags, 8) & O_NONBLOCK) !== 0
}
