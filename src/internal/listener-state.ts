/**
 * What the kernel says about a socket fdpass is asked to adopt as a
 * listener: whether it listens, and whether it is non-blocking (accept has
 * no per-call non-blocking flag, so that decides how a server may accept).
 *
 * Whether it listens comes from the native `socketInfo` (`SO_ACCEPTCONN` on
 * Linux, the kernel's socket record on macOS), so it holds in any network
 * namespace and on every platform. The file status flags come from
 * /proc/self/fdinfo on Linux; where there is no /proc (macOS) that answer is
 * `undefined`: unknown, and the server then accepts as from a blocking
 * listener. Neither changes anything about the socket.
 */
import * as fs from 'node:fs'
import { native } from './native'

/** What is known of a socket's listening state; `undefined` where the platform cannot tell. */
export interface ListenerState {
  /** Whether `listen()` was called on it. */
  listening: boolean | undefined
  /** Whether its open file description has `O_NONBLOCK`. */
  nonBlocking: boolean | undefined
}

/** Linux's `O_NONBLOCK` (octal 04000 in /proc's fdinfo flags) on every architecture fdpass ships for. */
const O_NONBLOCK = 0o4000

/** The listening state of the socket `fd` (a socket already checked to be `AF_UNIX`). */
export function listenerState(fd: number): ListenerState {
  const listening = native.socketInfo(fd).listening
  return { listening, nonBlocking: process.platform === 'linux' ? nonBlockingFromProc(fd) : undefined }
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
