import test from 'ava'
import { execFile, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'

import { closeFds, fdKind, MAX_MEMFD_NAME_BYTES, memfd, recvFds, sendFds, socketPair } from 'fdpass'

import { isCloexec, withFdAudit } from './helpers/fd-audit.js'

const linux = process.platform === 'linux'

function errorOf(fn: () => unknown): NodeJS.ErrnoException | undefined {
  try {
    fn()
  } catch (err) {
    return err as NodeJS.ErrnoException
  }
  return undefined
}

test.serial('memfd: a zero-filled file of the size asked, close-on-exec, readable and writable', async (t) => {
  await withFdAudit(t, () => {
    const fd = memfd('fdpass-test', 10_000)
    t.is(fdKind(fd), 'file')
    t.true(isCloexec(fd))
    t.is(fs.fstatSync(fd).size, 10_000)
    const all = Buffer.alloc(10_000, 0xff)
    t.is(fs.readSync(fd, all, 0, all.length, 0), 10_000)
    t.true(all.every((b) => b === 0))
    fs.writeSync(fd, 'a known pattern', 5000)
    t.is(fs.readFileSync(`/dev/fd/${fd}`).subarray(5000, 5015).toString(), 'a known pattern')
    closeFds([fd])
  })
})

test.serial('memfd: size 0 and the longest name work; the name shows in /proc on Linux', async (t) => {
  await withFdAudit(t, () => {
    const empty = memfd('', 0)
    t.is(fs.fstatSync(empty).size, 0)
    const long = 'n'.repeat(MAX_MEMFD_NAME_BYTES)
    const named = memfd(long, 1)
    if (linux) t.is(fs.readlinkSync(`/proc/self/fd/${named}`), `/memfd:${long} (deleted)`)
    else t.is(fs.fstatSync(named).nlink, 0, 'unlinked: no name anyone could open')
    closeFds([empty, named])
  })
})

test.serial('memfd: the memory travels with sendFds; what one side writes the other reads', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    const fd = memfd('shared', 4096)
    sendFds(a, 'pool', [fd])
    const { fds } = recvFds(b)
    t.is(fds.length, 1)
    fs.writeSync(fd, 'written by the sender', 100)
    const got = Buffer.alloc(21)
    fs.readSync(fds[0]!, got, 0, 21, 100)
    t.is(got.toString(), 'written by the sender')
    closeFds([fd, ...fds, a, b])
  })
})

test.serial('memfd: sealed against shrinking (F_SEAL_SHRINK, read by Python), free to grow', async (t) => {
  if (!linux) {
    t.pass('macOS has no file seals (documented): nothing to check')
    return
  }
  await withFdAudit(t, async () => {
    const fd = memfd('sealed', 8192)
    // An independent reader of the seals: a Python child that inherits the fd as its fd 3.
    const py = 'import fcntl; print(fcntl.fcntl(3, fcntl.F_GET_SEALS), fcntl.F_SEAL_SHRINK)'
    const out = spawnSync('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit', fd], encoding: 'utf8' })
    const [seals, shrink] = out.stdout.trim().split(' ').map(Number)
    t.is(seals, shrink, 'exactly F_SEAL_SHRINK')
    t.is(errorOf(() => fs.ftruncateSync(fd, 4096))?.code, 'EPERM')
    fs.ftruncateSync(fd, 16_384)
    t.is(fs.fstatSync(fd).size, 16_384)
    // Not inherited by a child that was not given it (close-on-exec).
    const ls = await new Promise<string>((resolve) =>
      execFile('ls', ['/proc/self/fd'], (_err, stdout) => resolve(String(stdout))),
    )
    t.false(ls.split('\n').includes(String(fd)))
    closeFds([fd])
  })
})

test.serial('memfd: bad arguments throw before any syscall and open nothing', async (t) => {
  await withFdAudit(t, () => {
    const cases: Array<[unknown, unknown, string, ErrorConstructor]> = [
      [undefined, 1, 'ERR_INVALID_ARG_TYPE', TypeError],
      [42, 1, 'ERR_INVALID_ARG_TYPE', TypeError],
      ['a\0b', 1, 'ERR_INVALID_ARG_VALUE', TypeError],
      ['é'.repeat(125), 1, 'ERR_OUT_OF_RANGE', RangeError], // 250 bytes in UTF-8
      ['x', '1', 'ERR_INVALID_ARG_TYPE', TypeError],
      ['x', -1, 'ERR_OUT_OF_RANGE', RangeError],
      ['x', 1.5, 'ERR_OUT_OF_RANGE', RangeError],
      ['x', NaN, 'ERR_OUT_OF_RANGE', RangeError],
      ['x', 2 ** 53, 'ERR_OUT_OF_RANGE', RangeError],
    ]
    for (const [name, size, code, Class] of cases) {
      const err = errorOf(() => memfd(name as string, size as number))
      t.is(err?.code, code, `memfd(${String(name).slice(0, 10)}, ${String(size)})`)
      t.true(err instanceof Class)
      t.is(err?.syscall, undefined)
    }
  })
})

test.serial(
  'memfd: a full fd table is an OS error (EMFILE) with code, errno and syscall, and leaks nothing',
  async (t) => {
    if (!linux) {
      t.pass('prlimit is Linux-only: the error shape is checked on Linux')
      return
    }
    await withFdAudit(t, () => {
      // A child with a small fd limit fills its table, then asks for a memfd.
      const child = `
      const fs = require('node:fs')
      const { memfd } = require(${JSON.stringify(require.resolve('fdpass'))})
      const before = fs.readdirSync('/proc/self/fd').length
      const filler = []
      try { for (;;) filler.push(fs.openSync('/dev/null', 'r')) } catch {}
      let result
      try { memfd('full', 4096); result = { ok: true } } catch (e) { result = { code: e.code, errno: e.errno, syscall: e.syscall, message: e.message } }
      for (const fd of filler) fs.closeSync(fd)
      result.leaked = fs.readdirSync('/proc/self/fd').length - before
      console.log(JSON.stringify(result))
    `
      const out = spawnSync('prlimit', ['--nofile=64:64', process.execPath, '-e', child], { encoding: 'utf8' })
      t.is(out.status, 0, out.stderr)
      const result = JSON.parse(out.stdout) as Record<string, unknown>
      t.like(result, { code: 'EMFILE', errno: -24, syscall: 'memfd_create', leaked: 0 })
      t.regex(String(result.message), /too many open fds/)
    })
  },
)
