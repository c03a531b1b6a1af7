/**
 * Fd audits: every test that moves fds compares the open fds of the process
 * before and after, so that a leak on any path (success or error) fails it.
 */
import type { ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { lookup } from 'node:dns/promises'
import { once } from 'node:events'
import { fstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'

const FD_DIR = process.platform === 'linux' ? '/proc/self/fd' : '/dev/fd'

/** What an fd points at: the link target on Linux, device and inode elsewhere. */
function identify(fd: number): string {
  if (process.platform === 'linux') return readlinkSync(`${FD_DIR}/${fd}`)
  const st = fstatSync(fd)
  return `dev ${st.dev} ino ${st.ino} mode ${st.mode.toString(8)}`
}

/** The open fds of this process: fd number -> what it points at. */
export function openFds(): Map<number, string> {
  const fds = new Map<number, string>()
  for (const name of readdirSync(FD_DIR)) {
    const fd = Number(name)
    try {
      fds.set(fd, identify(fd))
    } catch {
      // The directory's own fd, closed by the time we look at it.
    }
  }
  return fds
}

function describeDiff(before: Map<number, string>, after: Map<number, string>): string {
  const lines: string[] = []
  for (const [fd, target] of after) if (before.get(fd) !== target) lines.push(`leaked fd ${fd} -> ${target}`)
  for (const [fd, target] of before) if (!after.has(fd)) lines.push(`lost fd ${fd} -> ${target}`)
  return lines.join('\n')
}

// Node opens some fds lazily and keeps them (the signal pipe used for child
// processes): open them once now so that they are part of every "before".
spawnSync(process.execPath, ['-e', ''])

// The same for the resolver behind a TCP listen or connect: musl's keeps
// /dev/urandom (and /dev/null) open from its first use. Warmed up once, before
// the first audit.
const resolverWarmedUp = (async () => {
  await lookup('localhost').catch(() => undefined)
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  await once(client, 'connect')
  client.destroy()
  await once(client, 'close')
  await new Promise((resolve) => server.close(resolve))
})()
// Reported by the first audit, not as an unhandled rejection at load.
resolverWarmedUp.catch(() => undefined)

/**
 * Runs `fn` and asserts that the process has exactly the same fds afterwards.
 * Tests that use it must be serial: other tests' fds would show up.
 */
export async function withFdAudit<T>(t: ExecutionContext, fn: () => T | Promise<T>): Promise<T> {
  await resolverWarmedUp
  const before = openFds()
  const result = await fn()
  let diff = describeDiff(before, openFds())
  // libuv closes some handles (child stdio pipes, a closed socket's fd) a
  // loop turn or more after the event that ends a test, later still on a
  // loaded machine: give it up to two seconds before calling it a leak.
  for (let i = 0; diff !== '' && i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    diff = describeDiff(before, openFds())
  }
  t.is(diff, '', 'the set of open fds changed')
  return result
}

// The addon's internal loader, for the one check with no portable JS way.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const binding = require('../../binding.js') as { isCloexec(fd: number): boolean }

/**
 * Whether close-on-exec is set on `fd`: read from /proc/self/fdinfo on Linux
 * (independently of fdpass), with fcntl(F_GETFD) elsewhere.
 */
export function isCloexec(fd: number): boolean {
  if (process.platform !== 'linux') return binding.isCloexec(fd)
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
  const match = /^flags:\s+(\d+)/m.exec(info)
  if (!match) throw new Error(`no flags in fdinfo of fd ${fd}`)
  // O_CLOEXEC is 02000000 (octal) in the flags field.
  return (parseInt(match[1] as string, 8) & 0o2000000) !== 0
}
