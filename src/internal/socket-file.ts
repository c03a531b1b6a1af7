/**
 * Placing a socket at a filesystem path for `listen()` and `bind()`: bind,
 * tell a live server from a stale socket file, replace a stale one, set the
 * file's mode, and listen, with no window for a racing process.
 *
 * Processes placing a socket at the same path take turns through a lock on
 * `<path>.lock` (`flock`, see crates/fdpass/src/socket_file.rs), removed when
 * done; whoever holds it checks, replaces and binds, and listens before it
 * lets go, so that the next one finds a live server, never a socket that is
 * bound but not listening yet (which answers ECONNREFUSED, as a stale one
 * does). The mode is on the file from its creation on Linux (the socket's
 * own mode, set by `fchmod` before `bind`) and set before `listen` elsewhere:
 * nobody can connect through wider permissions.
 */
import { Buffer } from 'node:buffer'
import * as fs from 'node:fs'
import * as os from 'node:os'

import type { FdpassError } from '../errors'
import { makeError } from './make-error'
import { native } from './native'
import type { SocketType } from '../raw'

/** How long to wait for another process placing a socket at the same path. */
const LOCK_WAIT_MS = 5000

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The socket file a server or bound socket created, to remove it on close if it is still ours. */
export interface OwnedPath {
  path: string
  dev: number
  ino: number
}

/** Removes a socket file if it is still the one we created. */
export function unlinkIfOwned(owned: OwnedPath): void {
  try {
    const st = fs.lstatSync(owned.path)
    if (st.isSocket() && st.dev === owned.dev && st.ino === owned.ino) fs.unlinkSync(owned.path)
  } catch {
    // Already gone.
  }
}

/** What to place, and how. */
export interface Placement {
  fd: number
  path: string
  type: SocketType
  /** Permissions of the socket file. */
  mode: number | undefined
  replaceStale: boolean
  /** Listen with this backlog (stream and seqpacket); undefined for a datagram socket. */
  backlog: number | undefined
}

/**
 * Binds (and listens) `fd` at `path`. Returns the socket file it created,
 * none for a Linux abstract name. Errors name the caller's path.
 */
export async function placeSocket(placement: Placement): Promise<OwnedPath | undefined> {
  const { fd, path, backlog } = placement
  const address = Buffer.from(path, 'utf8')
  if (address[0] === 0) {
    // An abstract name has no file: bind is atomic, and it goes with the socket.
    withPath(() => native.bindUnix(fd, address), path)
    if (backlog !== undefined) withPath(() => native.listenUnix(fd, backlog), path)
    return undefined
  }
  const lockPath = Buffer.from(`${path}.lock`, 'utf8')
  const lock = await takeLock(lockPath, path)
  try {
    return placeLocked(placement, address)
  } finally {
    native.unlockFile(lockPath, lock)
  }
}

/** Takes the lock beside `path`, waiting (without blocking the loop) while another process holds it. */
async function takeLock(lockPath: Buffer, path: string): Promise<number> {
  const deadline = Date.now() + LOCK_WAIT_MS
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    const fd = withPath(() => native.lockFile(lockPath), path, `the lock file ${lockPath.toString()}`)
    if (fd >= 0) return fd
    if (Date.now() > deadline) {
      throw makeError(
        Error,
        'EADDRINUSE',
        `listen EADDRINUSE: another process has held ${lockPath.toString()} for ${LOCK_WAIT_MS / 1000} s while placing a socket at ${path}`,
        { errno: -os.constants.errno.EADDRINUSE, syscall: 'flock', address: path },
      )
    }
    await sleep(delay)
  }
}

/** The part done under the lock. */
function placeLocked(placement: Placement, address: Buffer): OwnedPath {
  const { fd, path, mode, backlog } = placement
  if (mode !== undefined) withPath(() => native.presetSocketMode(fd, mode), path)
  bindOrReplace(placement, address)
  const st = fs.lstatSync(path)
  const owned = { path, dev: st.dev, ino: st.ino }
  try {
    if (mode !== undefined) withPath(() => native.chmodSocketFile(address, mode), path)
    if (backlog !== undefined) withPath(() => native.listenUnix(fd, backlog), path)
  } catch (err) {
    unlinkIfOwned(owned)
    throw err
  }
  return owned
}

/** Binds; on a taken path, tells a live server from a stale socket file, and replaces a stale one if asked. */
function bindOrReplace(placement: Placement, address: Buffer): void {
  const { fd, path, type, replaceStale } = placement
  try {
    native.bindUnix(fd, address)
    return
  } catch (err) {
    if ((err as FdpassError).code !== 'EADDRINUSE') throw namePath(err, path)
  }
  const state = fileState(path, type)
  if (state === 'gone' || (state === 'stale' && replaceStale)) {
    if (state === 'stale') {
      try {
        fs.unlinkSync(path)
      } catch (err) {
        // Removed meanwhile by a process that does not take the lock.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
    withPath(() => native.bindUnix(fd, address), path)
    return
  }
  const why = {
    stale: `a socket file is left at ${path} but nobody listens on it (its server died?): remove it or pass { replaceStale: true }`,
    live: `${path} is taken: another server listens on it`,
    other: `${path} is taken by a file that is not a socket`,
  }[state]
  throw makeError(Error, 'EADDRINUSE', `listen EADDRINUSE: ${why}`, {
    errno: -os.constants.errno.EADDRINUSE,
    syscall: 'bind',
    address: path,
  })
}

/** What is at a taken path: a live server's socket, a stale one, something else, or nothing any more. */
function fileState(path: string, type: SocketType): 'live' | 'stale' | 'other' | 'gone' {
  let st: fs.Stats
  try {
    st = fs.lstatSync(path)
  } catch {
    return 'gone'
  }
  if (!st.isSocket()) return 'other'
  return native.isListening(Buffer.from(path, 'utf8'), type) ? 'live' : 'stale'
}

/** Runs `fn`; an error it throws names the caller's path. */
function withPath<T>(fn: () => T, path: string, what?: string): T {
  try {
    return fn()
  } catch (err) {
    throw namePath(err, path, what)
  }
}

/** Adds `path` (or `what`) to an error's message, as Node's `net` does, and sets its `address`. */
function namePath(err: unknown, path: string, what = path): unknown {
  if (err instanceof Error) {
    const e = err as FdpassError & { address?: string }
    if (!e.message.includes(what)) e.message = `${e.message}: ${what}`
    e.address ??= path
  }
  return err
}
