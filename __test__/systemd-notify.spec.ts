import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as readline from 'node:readline'

import { closeFds, listen, memfd } from 'fdpass'
import { notify, ready, removeStoredFds, storeFds, watchdog, watchdogInterval } from 'fdpass/systemd'

import { withFdAudit } from './helpers/fd-audit.js'

// $NOTIFY_SOCKET and abstract names are Linux's; systemd runs nowhere else.
const linux = process.platform === 'linux'
const RECEIVER = join(__dirname, 'peers', 'notify_receiver.py')

interface Datagram {
  data: string
  truncated: boolean
  credentials: { pid: number; uid: number; gid: number } | null
  fds: Array<{ kind: string; cloexec: boolean; listening?: boolean; content?: string; link?: string }>
}

/** Starts the receiver on `address`; resolves once it is bound, with a promise of its report. */
async function startReceiver(address: string, count: number) {
  const child = spawn('python3', [RECEIVER, address, String(count)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const lines = readline.createInterface({ input: child.stdout })
  const iterator = lines[Symbol.asyncIterator]()
  const first = await iterator.next()
  if (first.done) throw new Error(`the receiver exited before binding: ${stderr}`)
  const report = (async () => {
    const next = await iterator.next()
    const [code] = (await (child.exitCode === null ? once(child, 'exit') : [child.exitCode])) as [number]
    if (code !== 0 || next.done) throw new Error(`the receiver failed (${code}): ${stderr}`)
    lines.close()
    return JSON.parse(next.value as string) as { datagrams: Datagram[]; fd_audit_ok: boolean }
  })()
  return { report, child }
}

function errorOf(fn: () => unknown): NodeJS.ErrnoException | undefined {
  try {
    fn()
  } catch (err) {
    return err as NodeJS.ErrnoException
  }
  return undefined
}

/** Runs `fn` with `NOTIFY_SOCKET` set to `value` (unset for undefined). */
function withNotifySocket<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.NOTIFY_SOCKET
  if (value === undefined) delete process.env.NOTIFY_SOCKET
  else process.env.NOTIFY_SOCKET = value
  try {
    return fn()
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET
    else process.env.NOTIFY_SOCKET = saved
  }
}

const self = () => ({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() })

test.serial(
  'notify on a path: exact datagrams, the fds of the fd store, the kernel-attached credentials',
  async (t) => {
    if (!linux) return t.pass('$NOTIFY_SOCKET is a Linux (systemd) interface')
    const dir = fs.mkdtempSync(join(tmpdir(), 'fdpass-notify-'))
    const path = join(dir, 'notify')
    await withFdAudit(t, async () => {
      const { report } = await startReceiver(path, 6)
      const state = memfd('fdpass-state', 0)
      fs.writeSync(state, 'counter=41', 0)
      const server = await listen(join(dir, 'http'))
      withNotifySocket(path, () => {
        t.true(ready())
        t.true(notify('STATUS=Serving\nMAINPID=' + process.pid))
        t.true(storeFds('state', [state]))
        t.true(storeFds('http', [server.fd]))
        t.true(removeStoredFds('http'))
        t.true(watchdog())
      })
      // The fds stayed ours: the manager got copies.
      t.is(fs.readFileSync(`/proc/self/fd/${state}`, 'latin1'), 'counter=41')
      closeFds([state])
      await server.close()
      const { datagrams, fd_audit_ok } = await report
      t.true(fd_audit_ok, 'the receiver closed every fd it got')
      t.deepEqual(
        datagrams.map((d) => d.data),
        [
          'READY=1',
          `STATUS=Serving\nMAINPID=${process.pid}`,
          'FDSTORE=1\nFDNAME=state',
          'FDSTORE=1\nFDNAME=http',
          'FDSTOREREMOVE=1\nFDNAME=http',
          'WATCHDOG=1',
        ],
      )
      for (const d of datagrams) {
        t.false(d.truncated)
        t.deepEqual(d.credentials, self(), 'the kernel attaches pid, uid and gid (SO_PASSCRED), as systemd reads them')
      }
      t.deepEqual(
        datagrams.map((d) => d.fds.length),
        [0, 0, 1, 1, 0, 0],
      )
      t.like(datagrams[2]?.fds[0], { kind: 'file', content: 'counter=41' })
      t.regex(datagrams[2]?.fds[0]?.link ?? '', /^\/memfd:fdpass-state/)
      t.like(datagrams[3]?.fds[0], { kind: 'socket', listening: true })
    })
    fs.rmSync(dir, { recursive: true, force: true })
  },
)

test.serial('notify on an @ abstract name', async (t) => {
  if (!linux) return t.pass('abstract socket names exist on Linux only')
  await withFdAudit(t, async () => {
    const name = `@fdpass-notify-${process.pid}-${Date.now()}`
    const { report } = await startReceiver(name, 2)
    const [a, b] = [memfd('one', 1), memfd('two', 2)]
    withNotifySocket(name, () => {
      t.true(notify('READY=1\nSTATUS=abstract'))
      t.true(storeFds('pair', [a, b]))
    })
    closeFds([a, b])
    const { datagrams, fd_audit_ok } = await report
    t.true(fd_audit_ok)
    t.is(datagrams[0]?.data, 'READY=1\nSTATUS=abstract')
    t.is(datagrams[1]?.data, 'FDSTORE=1\nFDNAME=pair')
    t.deepEqual(
      datagrams[1]?.fds.map((f) => f.link?.replace(/ \(deleted\)$/, '')),
      ['/memfd:one', '/memfd:two'],
      'both fds, in order',
    )
    t.deepEqual(datagrams[1]?.credentials, self())
  })
})

test.serial('notify without a service manager: false, nothing sent, the fds untouched', async (t) => {
  await withFdAudit(t, () => {
    const fd = memfd('kept', 1)
    withNotifySocket(undefined, () => {
      t.false(ready())
      t.false(watchdog())
      t.false(storeFds('kept', [fd]))
      t.false(removeStoredFds('kept'))
      t.false(notify('STATUS=x'))
    })
    withNotifySocket('', () => t.false(notify('READY=1')))
    t.is(fs.fstatSync(fd).size, 1)
    closeFds([fd])
  })
})

test.serial('bad names, states and fds: errors before any syscall; manager gone: ENOENT; no fd leaked', async (t) => {
  await withFdAudit(t, () => {
    const fd = memfd('x', 1)
    // NOTIFY_SOCKET names nothing: any syscall would fail with ENOENT, so an
    // argument error proves none was made.
    const missing = join(tmpdir(), `fdpass-no-manager-${process.pid}`)
    withNotifySocket(missing, () => {
      for (const name of ['', 'a:b', 'line\nREADY=1', 'tab\t', 'é', 'x'.repeat(256), '\x7f']) {
        t.like(
          errorOf(() => storeFds(name, [fd])),
          { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
          JSON.stringify(name),
        )
        t.like(
          errorOf(() => removeStoredFds(name)),
          { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
        )
      }
      t.like(
        errorOf(() => storeFds(7 as unknown as string, [fd])),
        { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' },
      )
      t.like(
        errorOf(() => storeFds('ok', [])),
        { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
      )
      t.like(
        errorOf(() => storeFds('ok', [-1])),
        { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' },
      )
      t.like(
        errorOf(() => storeFds('ok', new Array(254).fill(fd))),
        { name: 'RangeError', code: 'ERR_TOO_MANY_FDS' },
      )
      t.like(
        errorOf(() => notify('')),
        { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
      )
      t.like(
        errorOf(() => notify('A=\0')),
        { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
      )
      t.like(
        errorOf(() => notify(1 as unknown as string)),
        { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' },
      )
      // The longest valid name passes the checks and reaches sendmsg.
      t.like(
        errorOf(() => storeFds('x'.repeat(255), [fd])),
        { code: 'ENOENT', errno: -2, syscall: 'sendmsg' },
      )
      t.like(
        errorOf(() => ready()),
        { code: 'ENOENT', syscall: 'sendmsg' },
      )
    })
    withNotifySocket('vsock:2:9999', () => {
      t.like(
        errorOf(() => ready()),
        { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
      )
    })
    withNotifySocket('relative/path', () => {
      t.like(
        errorOf(() => ready()),
        { code: 'ERR_INVALID_ARG_VALUE' },
      )
    })
    closeFds([fd])
  })
})

test.serial('watchdogInterval: WATCHDOG_USEC in ms, only for the process WATCHDOG_PID names', (t) => {
  const saved = { usec: process.env.WATCHDOG_USEC, pid: process.env.WATCHDOG_PID }
  try {
    delete process.env.WATCHDOG_PID
    delete process.env.WATCHDOG_USEC
    t.is(watchdogInterval(), undefined)
    process.env.WATCHDOG_USEC = '30000000'
    t.is(watchdogInterval(), 30_000)
    process.env.WATCHDOG_PID = String(process.pid)
    t.is(watchdogInterval(), 30_000)
    process.env.WATCHDOG_PID = String(process.pid + 1)
    t.is(watchdogInterval(), undefined, 'meant for another process')
    process.env.WATCHDOG_PID = String(process.pid)
    process.env.WATCHDOG_USEC = '0'
    t.is(watchdogInterval(), undefined)
    process.env.WATCHDOG_USEC = '12abc'
    t.like(
      errorOf(() => watchdogInterval()),
      { code: 'ERR_SYSTEMD_ENVIRONMENT' },
    )
    process.env.WATCHDOG_USEC = '1000'
    process.env.WATCHDOG_PID = '-3'
    t.like(
      errorOf(() => watchdogInterval()),
      { code: 'ERR_SYSTEMD_ENVIRONMENT' },
    )
  } finally {
    for (const [key, value] of [
      ['WATCHDOG_USEC', saved.usec],
      ['WATCHDOG_PID', saved.pid],
    ] as const) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
  }
})
