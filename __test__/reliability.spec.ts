/**
 * Reliability cases not covered by raw.spec.ts / fd-socket.spec.ts: fds
 * across processes (every kind of fd, the shared open file description,
 * in-flight cycles, a sender that closes right after sending, 1000 times),
 * limits (the receiver's fd table full, ETOOMANYREFS as nobody), cleanup
 * (dropped sockets and GC, error paths close fds), syscalls (no MSG_PEEK,
 * MSG_CMSG_CLOEXEC, by strace; the poll kept between messages), peer
 * credentials of a nobody peer, and peers that go away (ECONNRESET, a
 * receiver that exits with fds in flight, a signal during a blocking
 * recvFds). Linux only: they read /proc and use Linux-only fd kinds.
 *
 * Every test audits the fds of this process (withFdAudit, hence serial) and
 * every child prints its own audit.
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, fdKind, FdSocket, listen, recvFds, sendFds, socketPair, type SocketType } from 'fdpass'

import { isCloexec, openFds, withFdAudit } from './helpers/fd-audit.js'
import { codeOf, timeout } from './helpers/outcomes.js'
import { serialUnlessEmulated } from './helpers/emulation.js'
import { openTempFile, readText } from './helpers/files.js'
import { NODE_PEER, PY_PEER, run, runNode, runPython, sleep, within } from './peers/rel_spawn.js'

const OLD_PEER = path.join(__dirname, 'peers', 'node_peer.js')

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-rel-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))
const NOBODY = 65534
const O_NONBLOCK = 0o4000
const fileWith = (contents: string): number => openTempFile(tmp, contents)
const readAt = (fd: number, position: number | null = 0, max = 256): string => readText(fd, position, max)

/** flags and pos of an fd, from /proc/self/fdinfo (independently of fdpass). */
function fdinfo(fd: number): { flags: number; pos: number } {
  const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
  return {
    flags: parseInt(/^flags:\s+(\d+)/m.exec(info)![1]!, 8),
    pos: Number(/^pos:\s+(\d+)/m.exec(info)![1]),
  }
}

// ---------------------------------------------------------------- fds across processes

test.serial('every kind of fd from a Python peer is usable here, and the same open file when sent back', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = socketPair('seqpacket')
    const py = runPython(PY_PEER, ['kinds'], { socket: theirs, timeoutMs: 30_000 })
    closeFds([theirs])
    const sock = FdSocket.from(mine)
    const got = new Map<string, number>()
    for (let i = 0; i < 9; i++) {
      const m = await sock.receive(timeout())
      t.is(m.fds.length, 1, m.data.toString())
      t.true(isCloexec(m.fds[0]!))
      got.set(m.data.toString(), m.fds[0]!)
    }
    const fd = (name: string) => got.get(name)!
    t.deepEqual(
      [...got].map(([name, f]) => [name, fdKind(f)]),
      [
        ['file', 'file'],
        ['directory', 'directory'],
        ['pipe-read', 'fifo'],
        ['pipe-write', 'fifo'],
        ['unix', 'socket'],
        ['tcp-listen', 'socket'],
        ['tcp', 'socket'],
        ['eventfd', 'unknown'],
        ['memfd', 'file'],
      ],
    )
    // Use each of them.
    t.is(readAt(fd('file')), 'regular contents')
    t.true(fs.readdirSync(`/proc/self/fd/${fd('directory')}`).includes('inside'))
    t.is(readAt(fd('pipe-read'), null, 7), 'py-pipe')
    fs.writeSync(fd('pipe-write'), 'node-pipe')
    fs.writeSync(fd('unix'), 'node-unix')
    fs.writeSync(fd('tcp'), 'node-tcp')
    fs.writeSync(fd('eventfd'), Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]))
    fs.writeSync(fd('memfd'), 'node-was-here!', 0)
    t.is(readAt(fd('memfd')), 'node-was-here!')
    // Send them all back in one message before giving the listener to net.
    await sock.send('back', [...got.values()])
    // The listening TCP socket accepts here.
    const server = net.createServer((s) => s.end('accepted'))
    server.listen({ fd: fd('tcp-listen') })
    await once(server, 'listening')
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
    const chunks: Buffer[] = []
    client.on('data', (c: Buffer) => chunks.push(c))
    await once(client, 'close')
    t.is(Buffer.concat(chunks).toString(), 'accepted')
    server.close()
    await once(server, 'close') // closed the listener fd
    got.delete('tcp-listen')
    closeFds([...got.values()])
    const report = await py.report
    t.is(report.back_data, 'back')
    t.is(report.back_count, 9)
    t.deepEqual(report.same_files, new Array(9).fill(true), 'each fd that came back is the same open file')
    t.is(report.pipe, 'node-pipe')
    t.is(report.unix, 'node-unix')
    t.is(report.tcp, 'node-tcp')
    t.is(report.eventfd, 5)
    t.is(report.memfd, 'node-was-here!')
    t.true(report.fd_audit_ok, JSON.stringify(report))
    sock.close()
  })
})

test.serial('the open file description is shared across processes: offset and O_NONBLOCK both ways', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = socketPair('seqpacket')
    const py = runPython(PY_PEER, ['shared'], { socket: theirs, timeoutMs: 30_000 })
    closeFds([theirs])
    const sock = FdSocket.from(mine)
    const m = await sock.receive(timeout())
    t.is(m.data.toString(), 'shared')
    const [file, pipe] = m.fds as [number, number]
    t.is(fdinfo(file).pos, 5, 'the offset the sender set')
    t.is(fdinfo(pipe).flags & O_NONBLOCK, O_NONBLOCK, 'O_NONBLOCK set by the sender')
    t.true(isCloexec(pipe), 'close-on-exec is per fd and set here')
    t.is(readAt(file, null, 3), '567')
    await sock.send('step')
    const cleared = await sock.receive(timeout())
    t.is(cleared.data.toString(), 'cleared')
    t.is(fdinfo(pipe).flags & O_NONBLOCK, 0, 'O_NONBLOCK cleared by the sender shows here')
    await sock.send('done')
    const report = await py.report
    t.is(report.offset_after_peer_read, 8, 'our read moved the sender offset')
    t.true(report.fd_audit_ok, JSON.stringify(report))
    closeFds(m.fds)
    sock.close()
  })
})

/** Inodes of AF_UNIX sockets listed in /proc/net/unix. */
function unixInodes(): Set<number> {
  const lines = fs.readFileSync('/proc/net/unix', 'utf8').trim().split('\n').slice(1)
  return new Set(lines.map((l) => Number(l.trim().split(/\s+/)[6])))
}

async function waitGone(inodes: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms
  for (;;) {
    const live = unixInodes()
    const left = inodes.filter((i) => live.has(i))
    if (left.length === 0 || Date.now() > deadline) return left
    await sleep(20)
  }
}

for (const type of ['stream', 'seqpacket', 'dgram'] as SocketType[]) {
  test.serial(`${type} in-flight cycles (self, cross, triangle, a listener inside) are reclaimed`, async (t) => {
    await withFdAudit(t, async () => {
      const [a, b] = socketPair(type)
      // Each end over itself and over the other.
      sendFds(a, 's', [a])
      sendFds(b, 's', [b])
      sendFds(a, 'c', [b])
      sendFds(b, 'c', [a, b, a])
      // A triangle of three pairs, with a listening socket in flight too.
      const pairs = [socketPair(type), socketPair(type), socketPair(type)]
      const server = await listen(path.join(tmp, `cycle-${type}.sock`))
      for (let i = 0; i < 3; i++) sendFds(pairs[i]![0], 't', [pairs[(i + 1) % 3]![1], pairs[i]![1]])
      sendFds(pairs[0]![1], 'l', [server.fd])
      const all = [a, b, ...pairs.flat()]
      const inodes = [...all, server.fd].map((fd) => fs.fstatSync(fd).ino)
      t.deepEqual(inodes.filter((i) => unixInodes().has(i)).length, inodes.length, 'all listed while open')
      closeFds(all)
      await server.close()
      const left = await waitGone(inodes, 5000)
      t.deepEqual(left, [], 'the kernel reclaimed every socket of the cycles')
    })
  })
}

test.serial('the sender closes its copy right after sending, 1000 times, from another process', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = socketPair()
    const peer = runNode(['send-close', '1000'], { socket: theirs })
    closeFds([theirs])
    const sock = FdSocket.from(mine)
    let ok = 0
    for (let i = 0; i < 1000; i++) {
      const m = await sock.receive(timeout())
      t.is(m.data.toString(), String(i))
      if (m.fds.length === 1 && fdinfo(m.fds[0]!).pos === i % 100 && readAt(m.fds[0]!, 0, 300) === 'a'.repeat(200)) ok++
      closeFds(m.fds)
    }
    t.is(ok, 1000, 'every received fd works and carries the offset the sender left')
    await sock.send('done')
    const report = await peer.report
    t.is(report.done, 'done')
    t.true(report.fdAuditOk, JSON.stringify(report))
    sock.close()
  })
})

// ---------------------------------------------------------------- limits: a full fd table, ETOOMANYREFS

/** Sends 'first' + 10 fds then 'second' + 2 fds to a child whose fd table has 3 free slots. */
async function fdTableFull(framed: boolean): Promise<Record<string, unknown>> {
  const [mine, theirs] = socketPair()
  const peer = runNode(['emfile', framed ? 'framed' : 'raw'], { socket: theirs, nofile: 96 })
  closeFds([theirs])
  await within(peer.ready, 15_000, 'the child filled its fd table')
  const files = Array.from({ length: 10 }, (_, i) => fileWith(`f${i}`))
  const sender = FdSocket.from(mine)
  await sender.send('first', files)
  // A framed receiver closes the stream at the first error: the second send
  // may find it gone already.
  await sender.send('second', files.slice(0, 2)).catch((err: NodeJS.ErrnoException) => {
    if (!framed || !['EPIPE', 'ECONNRESET'].includes(err.code as string)) throw err
  })
  closeFds(files)
  const report = await peer.report
  sender.close()
  return report
}

test.serial(
  'the receiver fd table is full (raw recvFds): ERR_FDS_TRUNCATED, nothing leaked, the socket still works',
  async (t) => {
    await withFdAudit(t, async () => {
      // The raw child reads frames as plain recvmsg bytes: what matters are the fds.
      const report = await fdTableFull(false)
      t.is(report.firstError, 'ERR_FDS_TRUNCATED', JSON.stringify(report))
      t.deepEqual(report.leakedByError, [], 'the fds that did arrive were closed')
      t.is((report.second as { fds: number }).fds, 2, 'the next message arrives whole')
      t.true(report.secondFdsWork)
      t.true(report.fdAuditOk, JSON.stringify(report))
      t.log(`raw: ${report.firstMessage}`)
    })
  },
)

test.serial(
  'the receiver fd table is full (framed FdSocket): the stream closes with an error, nothing leaked',
  async (t) => {
    await withFdAudit(t, async () => {
      const report = await fdTableFull(true)
      t.true(['ERR_FDS_TRUNCATED', 'ERR_FDPASS_PROTOCOL'].includes(report.firstError as string), JSON.stringify(report))
      t.deepEqual(report.leakedByError, [], 'the fds that did arrive were closed')
      t.is(report.secondError, 'ERR_SOCKET_CLOSED', 'the stream was closed after the error')
      t.true(report.fdAuditOk, JSON.stringify(report))
      t.log(`framed: ${report.firstError}: ${report.firstMessage}`)
    })
  },
)

test.serial('ETOOMANYREFS as nobody (RLIMIT_NOFILE 64); the socket works again once the receiver drains', async (t) => {
  await withFdAudit(t, async () => {
    const peer = runNode(['toomanyrefs'], { uid: NOBODY, gid: NOBODY, nofile: 64 })
    const report = await peer.report
    t.is(report.uid, NOBODY)
    t.is(report.code, 'ETOOMANYREFS', JSON.stringify(report))
    t.is(report.syscall, 'sendmsg')
    t.true(
      (report.sentBeforeError as number) >= 64 && (report.sentBeforeError as number) <= 66,
      `sent ${report.sentBeforeError}`,
    )
    t.is(report.drained, report.sentBeforeError, 'every message sent before the error arrives with its fd')
    t.deepEqual(report.afterDrain, { data: 'after', fds: 1 })
    t.true(report.fdAuditOk, JSON.stringify(report))
  })
})

// ---------------------------------------------------------------- cleanup: GC and error paths

test.serial('idle FdSockets dropped without close() have their fds closed by the finalizer', async (t) => {
  await withFdAudit(t, async () => {
    const report = await runNode(['gc'], { nodeArgs: ['--expose-gc'] }).report
    t.is(report.withSockets, 100, '50 pairs open')
    t.is(report.afterGc, 0, 'all closed after gc')
    t.true(report.fdAuditOk, JSON.stringify(report))
  })
})

test.serial("a dropped FdSocket holding a read-ahead message closes that message's fds too", async (t) => {
  await withFdAudit(t, async () => {
    const report = await runNode(['gc-readahead'], { nodeArgs: ['--expose-gc'] }).report
    // a, b and the two fds of the message 'two' that b read ahead.
    t.is(report.held, 4, JSON.stringify(report))
    t.is(report.afterGc, 0, `fds left open after the socket was collected: ${JSON.stringify(report)}`)
    t.true(report.fdAuditOk, JSON.stringify(report))
  })
})

test.serial('error paths close every fd (send errors immediate and queued, bad fds, closed sockets)', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair('stream', { maxBytes: 1 << 20 })
    const f = fileWith('x')
    const closed = 999_999 // never open (a closed number could be reused by fdpass's own duplicates)
    // Immediate send with a closed fd among good ones.
    t.is(await codeOf(a.send('x', [f, closed, f])), 'EBADF')
    // Fill the buffer so that sends queue (fds duplicated), then a bad one.
    const big = Buffer.alloc(512 * 1024)
    const queued = [a.send(big, [f]), a.send(big, [f, f])]
    t.true(a.writableLength > 0)
    t.is(await codeOf(a.send('bad', [f, f, closed])), 'EBADF', 'a queued send with a bad fd')
    t.is(await codeOf(a.send('x', new Array(254).fill(f))), 'ERR_TOO_MANY_FDS')
    t.is(await codeOf(a.send('x', [{} as unknown as number])), 'ERR_INVALID_ARG_TYPE')
    // The peer goes away with sends queued: they fail, their duplicates are closed.
    b.close()
    const results = await Promise.allSettled(queued)
    t.true(results.some((r) => r.status === 'rejected'))
    for (const r of results) {
      if (r.status === 'rejected')
        t.true(['EPIPE', 'ECONNRESET'].includes((r.reason as NodeJS.ErrnoException).code!), String(r.reason))
    }
    t.is(a.writableLength, 0)
    a.close()
    t.is(await codeOf(a.send('x', [f])), 'ERR_SOCKET_CLOSED')
    closeFds([f])
  })
})

// ---------------------------------------------------------------- syscalls: strace

test.serial('no MSG_PEEK ever, and every recvmsg carries MSG_CMSG_CLOEXEC (strace)', async (t) => {
  await withFdAudit(t, async () => {
    const trace = path.join(tmp, 'strace.txt')
    const peer = runNode(['exercise'], {
      wrapper: ['strace', '-f', '-qq', '-e', 'trace=recvmsg,recvfrom,recvmmsg', '-o', trace],
      timeoutMs: 60_000,
    })
    const report = await peer.report
    t.is(report.received, 2 + 4 * 2)
    t.true(report.fdAuditOk, JSON.stringify(report))
    const lines = fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean)
    fs.unlinkSync(trace)
    const recvmsg = lines.filter((l) => /\brecvmsg\(/.test(l))
    t.true(recvmsg.length >= 10, `${recvmsg.length} recvmsg calls traced`)
    t.deepEqual(
      lines.filter((l) => l.includes('MSG_PEEK')),
      [],
      'no MSG_PEEK',
    )
    // strace prints the flags after the msghdr; resumed lines carry them too.
    const calls = recvmsg.filter((l) => !l.includes('<unfinished'))
    t.deepEqual(
      calls.filter((l) => !l.includes('MSG_CMSG_CLOEXEC')),
      [],
      'MSG_CMSG_CLOEXEC on every recvmsg',
    )
    t.true(
      recvmsg.some((l) => l.includes('SCM_RIGHTS')),
      'fds were received under the trace',
    )
  })
})

test.serial(
  'a request-reply loop keeps watching its socket between messages (strace: epoll_ctl does not grow with them)',
  async (t) => {
    await withFdAudit(t, async () => {
      const f = fileWith('ping')
      const epollCtl: Record<number, number> = {}
      for (const n of [20, 200]) {
        const trace = path.join(tmp, `epoll-${n}.txt`)
        const [mine, theirs] = socketPair()
        const peer = runNode(['ping-loop', String(n)], {
          socket: theirs,
          wrapper: ['strace', '-f', '-qq', '--seccomp-bpf', '-e', 'trace=epoll_ctl', '-o', trace],
          timeoutMs: 60_000,
        })
        closeFds([theirs])
        const sock = FdSocket.from(mine)
        // Each 'y' says the peer waits for the next message on its event loop.
        t.is((await sock.receive()).data.toString(), 'y')
        for (let i = 0; i < n; i++) {
          await sock.send('x', [f])
          t.is((await sock.receive()).data.toString(), 'y')
        }
        const report = await peer.report
        sock.close()
        t.is(report.received, n)
        t.is(report.fdsReceived, n)
        t.true(report.fdAuditOk, JSON.stringify(report))
        epollCtl[n] = fs
          .readFileSync(trace, 'utf8')
          .split('\n')
          .filter((l) => /\bepoll_ctl\(/.test(l)).length
        fs.unlinkSync(trace)
      }
      // Stopping and restarting the poll per message would add two per message.
      t.true(
        epollCtl[200]! - epollCtl[20]! < 20,
        `epoll_ctl: ${epollCtl[20]} for 20 round trips, ${epollCtl[200]} for 200`,
      )
      closeFds([f])
    })
  },
)

test.serial(
  'once nobody receives, a socket whose last message came from the event loop lets the process exit',
  async (t) => {
    await withFdAudit(t, async () => {
      const f = fileWith('last')
      const [mine, theirs] = socketPair()
      const peer = runNode(['receive-then-idle'], { socket: theirs, timeoutMs: 30_000 })
      closeFds([theirs])
      const sock = FdSocket.from(mine)
      await within(peer.ready, 15_000, 'the peer waits on its event loop')
      await sock.send('last', [f])
      // This end stays open: the peer must stop watching its socket by itself.
      const report = await within(peer.report, 10_000, 'the idle peer exits by itself')
      t.is(report.got, 'last')
      t.is(report.fdsReceived, 1)
      t.true(report.fdAuditOk, JSON.stringify(report))
      sock.close()
      closeFds([f])
    })
  },
)

// ---------------------------------------------------------------- peer credentials

test.serial('peerCredentials() of a peer running as nobody is its pid, uid and gid', async (t) => {
  await withFdAudit(t, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-nobody-'))
    fs.chmodSync(dir, 0o777)
    const socketPath = path.join(dir, 'creds.sock')
    const server = await listen(socketPath, { mode: 0o666 })
    // node_peer.js (the existing peer): its 'connect' mode says hello and waits for bye.
    const peer = run(process.execPath, [OLD_PEER, 'connect', socketPath], { uid: NOBODY, gid: NOBODY })
    const sock = await within(server.accept(), 15_000, 'accept')
    t.deepEqual(sock.peerCredentials(), { pid: peer.child.pid, uid: NOBODY, gid: NOBODY })
    t.is((await sock.receive(timeout())).data.toString(), 'hello')
    await sock.send('bye')
    const report = await peer.report
    t.is(report.got, 'bye')
    // (node_peer.js's own fdAuditOk assumes it got a socket as fd 3: compare the lists here.)
    t.deepEqual(report.fdsAfter, report.fdsBefore, 'the nobody peer closed everything it opened')
    sock.close()

    // allowPeer on the uid: nobody is refused before anything is read.
    const strict = await listen(path.join(dir, 'strict.sock'), { mode: 0o666, allowPeer: (c) => c.uid === 0 })
    const refused = run(process.execPath, [OLD_PEER, 'connect', path.join(dir, 'strict.sock')], {
      uid: NOBODY,
      gid: NOBODY,
      timeoutMs: 15_000,
    })
    const accepted = strict.accept({ signal: AbortSignal.timeout(1500) })
    const err = await refused.report.then(
      () => undefined,
      (e: Error) => e,
    )
    t.truthy(err, 'the refused peer fails (its connection was closed)')
    t.is(await codeOf(accepted), 'ABORT_ERR', 'the refused connection was never handed out')
    await strict.close()
    await server.close()
    fs.rmSync(dir, { recursive: true })
  })
})

// ---------------------------------------------------------------- peers that go away

test.serial('the peer closes with our data unread: receive() reports ECONNRESET or the end, never EBADF', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = socketPair()
    const sock = FdSocket.from(mine)
    const f = fileWith('x')
    await sock.send('unread', [f, f])
    closeFds([theirs]) // closes with 'unread' and its fds still queued
    const first = await codeOf(sock.receive(timeout()))
    t.true(first === 'ECONNRESET' || first === 'ERR_SOCKET_CLOSED', `first receive: ${first}`)
    t.is(await codeOf(sock.receive(timeout())), 'ERR_SOCKET_CLOSED')
    const sendCode = await codeOf(sock.send('more', [f]))
    t.true(['EPIPE', 'ECONNRESET', 'ERR_SOCKET_CLOSED'].includes(sendCode!), `send: ${sendCode}`)
    t.is(readAt(f), 'x', 'our fd is unaffected')
    t.log(`FdSocket receive after the peer closed with data unread: ${first}; send: ${sendCode}`)
    sock.close()

    // The raw API reports the same condition as an Error with a code.
    const [a, b] = socketPair()
    sendFds(a, 'unread', [f])
    closeFds([b])
    let raw: string | undefined
    try {
      const got = recvFds(a)
      raw = got.data.length === 0 ? 'eof' : 'data'
      closeFds(got.fds)
    } catch (err) {
      raw = (err as NodeJS.ErrnoException).code
    }
    t.is(raw, 'ECONNRESET', 'raw recvFds surfaces ECONNRESET')
    closeFds([a, f])
  })
})

test.serial(
  'the receiver exits with fds in flight: the sender is stable, the send gets EPIPE and destroys the socket, its fds unaffected',
  async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair()
      // It exits without reading once its stdin ends: after the sends below.
      const receiver = runPython('-c', ['import json, sys; sys.stdin.read(); print(json.dumps({"exiting": True}))'], {
        socket: theirs,
        stdin: true,
      })
      closeFds([theirs])
      const sock = FdSocket.from(mine)
      const f = fileWith('still mine')
      for (let i = 0; i < 100; i++) await sock.send(`m${i}`, [f, f, f])
      receiver.child.stdin!.end()
      await receiver.report
      t.is(receiver.child.exitCode, 0, 'the receiver exited without reading')
      const code = await codeOf(sock.send('after', [f]))
      t.is(code, 'EPIPE')
      // EPIPE destroyed the socket, as it destroys a net.Socket.
      t.true(sock.closed)
      t.is(sock.fd, -1)
      t.is(await codeOf(sock.send('again')), 'ERR_SOCKET_CLOSED', 'a later send is refused, no crash')
      t.is(readAt(f), 'still mine')
      t.is(fdKind(f), 'file')
      sock.close()
      closeFds([f])
    })
  },
)

const RECVMSG_NR: Record<string, number> = { x64: 47, arm64: 212 }

serialUnlessEmulated(
  'a signal during a blocking raw recvFds: retried, the message arrives, the handler runs after',
  "it watches the child's syscall in /proc/PID/syscall, where the kernel shows the emulator's",
  async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair()
      const peer = runNode(['signal'], { socket: theirs })
      closeFds([theirs])
      await within(peer.ready, 15_000, 'the child is ready')
      const pid = peer.child.pid!
      // Wait until the child's main thread sits in recvmsg.
      const nr = RECVMSG_NR[process.arch]
      let inRecv = false
      for (let i = 0; i < 250 && !inRecv; i++) {
        await sleep(20)
        const sys = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8')
        inRecv = nr === undefined ? i > 10 : sys.startsWith(`${nr} `)
      }
      t.true(inRecv, 'the child is blocked in recvmsg')
      peer.child.kill('SIGUSR1')
      await sleep(200)
      t.is(peer.child.exitCode, null, 'the child survived the signal')
      if (nr !== undefined)
        t.true(fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').startsWith(`${nr} `), 'still in recvmsg')
      const f = fileWith('after the signal')
      sendFds(mine, 'msg', [f])
      closeFds([f])
      const report = await peer.report
      t.is(report.data, 'msg')
      t.is(report.fds, 1)
      t.true(report.fdWorks)
      t.is(report.signalsSeenWhenRecvReturned, 0, 'the JS handler had not run while recvFds blocked')
      t.is(report.signals, 1, 'the JS handler ran once recvFds returned')
      t.true(report.fdAuditOk, JSON.stringify(report))
      closeFds([mine])
    })
  },
)

// Keep an eye on what the helpers spawn.
test.serial('the peers used here exist', (t) => {
  t.true(fs.existsSync(NODE_PEER))
  t.true(fs.existsSync(PY_PEER))
  t.true(openFds().size > 0)
  t.is(spawnSync('prlimit', ['--version']).status, 0, 'prlimit (util-linux) is installed')
  t.is(spawnSync('strace', ['-V']).status, 0, 'strace is installed')
})
