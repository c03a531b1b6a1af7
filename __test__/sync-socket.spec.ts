/**
 * SyncSocket: the synchronous API on a socket fdpass owns. Same messages and
 * errors as sendFds/recvFds, ownership (close, dispose, garbage collection),
 * adoption checks, a child process adopting fd 3, and the point of it: no
 * AF_UNIX check per send (strace counts the syscalls).
 */
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, socketPair, SyncSocket, type SocketType } from 'fdpass'

import { openFds, withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'

const linux = process.platform === 'linux'
const TYPES: SocketType[] = linux ? ['stream', 'seqpacket', 'dgram'] : ['stream', 'dgram']
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-sync-'))
const root = path.join(__dirname, '..')
let counter = 0
const fileWith = (contents: string): number => openTempFile(tmp, contents, 'r')
const readAll = (fd: number): string => readText(fd)

test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

for (const type of TYPES) {
  test.serial(`${type}: one fd and 253 fds arrive, each the file that was sent`, async (t) => {
    await withFdAudit(t, () => {
      const [a, b] = SyncSocket.pair(type)
      t.is(a.type, type)
      const f = fileWith(`hello over ${type}`)
      t.is(a.send('one', [f]), 3)
      const one = b.receive()
      t.is(one.data.toString(), 'one')
      t.is(one.fds.length, 1)
      t.not(one.fds[0], f)
      t.is(readAll(one.fds[0] as number), `hello over ${type}`)
      closeFds(one.fds)

      const files = Array.from({ length: 253 }, (_, i) => fileWith(`file ${i}`))
      a.send(Buffer.from('many'), files)
      const many = b.receive()
      t.is(many.fds.length, 253)
      t.deepEqual(
        many.fds.map((fd) => readAll(fd)),
        files.map((_, i) => `file ${i}`),
      )
      closeFds([...many.fds, ...files, f])
      a.close()
      b.close()
    })
  })
}

test.serial('from() takes ownership: close() closes the fd once, dispose too', async (t) => {
  await withFdAudit(t, () => {
    const [x, y] = socketPair()
    const a = SyncSocket.from(x)
    const b = SyncSocket.from(y)
    t.is(a.fd, x)
    t.false(a.closed)
    a.close()
    t.is(a.fd, -1)
    t.true(a.closed)
    t.false(openFds().has(x), 'the fd is closed')
    a.close() // a second close does nothing (and closes no reused number)
    b[Symbol.dispose]()
    t.false(openFds().has(y))
    t.true(b.closed)
  })
})

test.serial('a closed socket refuses send and receive with ERR_SOCKET_CLOSED', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = SyncSocket.pair()
    a.close()
    b.close()
    const send = t.throws(() => a.send('x')) as NodeJS.ErrnoException
    t.is(send.code, 'ERR_SOCKET_CLOSED')
    const receive = t.throws(() => b.receive()) as NodeJS.ErrnoException
    t.is(receive.code, 'ERR_SOCKET_CLOSED')
  })
})

test.serial('from() refuses what is not a Unix socket and leaves the fd open', async (t) => {
  await withFdAudit(t, async () => {
    const f = fileWith('x')
    const notSocket = t.throws(() => SyncSocket.from(f)) as NodeJS.ErrnoException
    t.is(notSocket.code, 'ENOTSOCK')
    t.is(readAll(f), 'x', 'the file is still open')
    closeFds([f])

    const server = net.createServer()
    const accepted = once(server, 'connection') as Promise<[net.Socket]>
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
    await once(client, 'connect')
    const tcpFd = (client as unknown as { _handle: { fd: number } })._handle.fd
    const tcp = t.throws(() => SyncSocket.from(tcpFd)) as NodeJS.ErrnoException
    t.is(tcp.code, 'ERR_NOT_UNIX_SOCKET')
    t.true(openFds().has(tcpFd), 'the TCP socket is still open')
    const [peer] = await accepted
    peer.destroy()
    client.destroy()
    await Promise.all([once(peer, 'close'), once(client, 'close')])
    server.close()
    await once(server, 'close')

    for (const bad of [-1, 1.5, '3', undefined]) {
      const err = t.throws(() => SyncSocket.from(bad as number)) as NodeJS.ErrnoException
      t.true(err instanceof TypeError || err instanceof RangeError)
    }
    t.throws(() => new (SyncSocket as unknown as new (...args: unknown[]) => SyncSocket)(Symbol('x'), 3, 'stream'), {
      code: 'ERR_ILLEGAL_CONSTRUCTOR',
    })
  })
})

test.serial("errors are the fd-number functions' errors, and nothing leaks on them", async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = SyncSocket.pair()
    const f = fileWith('x')
    t.throws(() => a.send('x', new Array(254).fill(f)), { code: 'ERR_TOO_MANY_FDS', instanceOf: RangeError })
    t.throws(() => a.send('', [f]), { code: 'ERR_EMPTY_DATA' })
    t.throws(() => a.send('x', [-1]), { instanceOf: RangeError })
    t.throws(() => a.send(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })

    // More fds than maxFds: every one that arrived is closed.
    a.send('three', [f, f, f])
    t.throws(() => b.receive({ maxFds: 2 }), { code: 'ERR_FDS_TRUNCATED' })

    b.close()
    const epipe = t.throws(() => a.send('x', [f])) as NodeJS.ErrnoException
    t.is(epipe.code, 'EPIPE')
    t.is(epipe.errno, -os.constants.errno.EPIPE)
    t.is(epipe.syscall, 'sendmsg')
    // As README says: unlike an FdSocket, a SyncSocket stays open after an error.
    t.false(a.closed)
    t.true(a.fd >= 0)
    t.throws(() => a.send('x'), { code: 'EPIPE' })
    closeFds([f])
    a.close()
  })
})

test.serial('a child process adopts fd 3 with SyncSocket.from, receives a file and answers', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = SyncSocket.pair()
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
        const fs = require('fs')
        const { SyncSocket, closeFds } = require(${JSON.stringify(root)})
        const count = () => fs.readdirSync(process.platform === 'linux' ? '/proc/self/fd' : '/dev/fd').length
        const sock = SyncSocket.from(3)
        const before = count()
        const { data, fds } = sock.receive({ maxFds: 1 })
        const text = fs.readFileSync(fds[0], 'utf8')
        closeFds(fds)
        sock.send(data.toString() + ':' + text + ':' + (count() === before ? 'audit ok' : 'audit LEAK'))
        sock.close()
        `,
      ],
      { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] },
    )
    theirs.close()
    const f = fileWith('from the parent')
    mine.send('ping', [f])
    closeFds([f])
    const [code] = (await once(child, 'exit')) as [number]
    t.is(code, 0)
    t.is(mine.receive().data.toString(), 'ping:from the parent:audit ok')
    mine.close()
  })
})

if (linux) {
  // Identities of open fds come from /proc here.
  test.serial('a SyncSocket collected without close() closes its fd', async (t) => {
    // A child with --expose-gc: drops a pair unclosed, collects it, and reports
    // whether the two fds are gone and its fd table is as it was before.
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '-e',
        `
        const fs = require('fs')
        const { SyncSocket } = require(${JSON.stringify(root)})
        // What is open, by identity (socket:[inode]): a freed number is soon
        // reused, by readdirSync's own directory fd for one.
        const open = () => new Set(fs.readdirSync('/proc/self/fd').map((n) => { try { return fs.readlinkSync('/proc/self/fd/' + n) } catch { return '' } }))
        const same = (x, y) => x.size === y.size && [...x].every((v) => y.has(v))
        const before = open()
        before.delete('')
        let sockets
        ;(() => { const [a, b] = SyncSocket.pair(); sockets = [a.fd, b.fd].map((fd) => fs.readlinkSync('/proc/self/fd/' + fd)) })()
        const wasOpen = sockets.every((s) => s.startsWith('socket:') && open().has(s))
        ;(async () => {
          for (let i = 0; i < 50 && sockets.some((s) => open().has(s)); i++) {
            globalThis.gc()
            await new Promise((r) => setTimeout(r, 10))
          }
          const after = open()
          after.delete('')
          console.log(JSON.stringify({ wasOpen, stillOpen: sockets.filter((s) => after.has(s)), fdAuditOk: same(before, after) }))
        })()
        `,
      ],
      { encoding: 'utf8' },
    )
    t.is(r.status, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout), { wasOpen: true, stillOpen: [], fdAuditOk: true })
  })

  /**
   * Runs `body` in a child under strace, with a SyncSocket pair `a`, `b` and
   * an open fd `f`; counts the syscalls `body` made (between two marker
   * opens, so that start-up does not count; musl opens with `open` on x64,
   * glibc with `openat`, and arm64 has only `openat`, hence `?open`). The child audits its fd table
   * around `body` and the run fails if anything leaked or was lost.
   */
  function traced(body: string): Record<string, number> {
    const out = path.join(tmp, `strace-${counter++}.txt`)
    const start = path.join(tmp, 'no-such-file-start')
    const end = path.join(tmp, 'no-such-file-end')
    const r = spawnSync(
      'strace',
      [
        '-f',
        '-qq',
        '-e',
        'trace=?open,openat,getsockopt,sendmsg,recvmsg',
        '-o',
        out,
        process.execPath,
        '-e',
        `
        const fs = require('fs')
        const { SyncSocket, sendFds, recvFds, closeFds } = require(${JSON.stringify(root)})
        const mark = (name) => { try { fs.openSync(name, 'r') } catch {} }
        const [a, b] = SyncSocket.pair()
        const f = fs.openSync('/dev/null', 'r')
        const open = () => fs.readdirSync('/proc/self/fd').map((n) => { try { return n + ' ' + fs.readlinkSync('/proc/self/fd/' + n) } catch { return '' } }).filter(Boolean).sort().join(',')
        const before = open()
        mark(${JSON.stringify(start)})
        ${body}
        mark(${JSON.stringify(end)})
        const after = open()
        if (after !== before) { console.error('fd audit failed: ' + before + ' -> ' + after); process.exit(3) }
      `,
      ],
      { encoding: 'utf8' },
    )
    if (r.status !== 0) throw new Error(`strace run failed: ${r.stderr}`)
    const lines = fs.readFileSync(out, 'utf8').split('\n')
    fs.rmSync(out)
    const counts: Record<string, number> = { getsockopt: 0, sendmsg: 0, recvmsg: 0 }
    let inside = false
    for (const line of lines) {
      if (line.includes(start)) inside = true
      else if (line.includes(end)) inside = false
      const match = /^\d+\s+(getsockopt|sendmsg|recvmsg)\(/.exec(line)
      if (inside && match) counts[match[1] as string]++
    }
    return counts
  }

  test.serial('sends on a SyncSocket make no AF_UNIX check: 1000 round trips, no getsockopt (strace)', (t) => {
    const owned = traced('for (let i = 0; i < 1000; i++) { a.send("x", [f]); closeFds(b.receive().fds) }')
    t.is(owned.sendmsg, 1000)
    t.is(owned.recvmsg, 1000)
    t.is(owned.getsockopt, 0, 'no getsockopt per send')
    // The fd-number function checks every time: the count above can fail.
    const numbers = traced('for (let i = 0; i < 1000; i++) { sendFds(a.fd, "x", [f]); closeFds(recvFds(b.fd).fds) }')
    t.is(numbers.sendmsg, 1000)
    t.true(numbers.getsockopt >= 1000, `fd numbers are checked per send (${numbers.getsockopt} getsockopt)`)
  })
}
