/**
 * Cases of the threat model (SECURITY.md) checked beyond the hostile-peer
 * suite: credentials and a pidfd mixed with SCM_RIGHTS, a peer that sends
 * fdpass its own socket back, and socket ids across worker threads.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'

import { closeFds, FdSocket, recvFds, sendFds, socketPair } from 'fdpass'

import { openFds, withFdAudit } from './helpers/fd-audit.js'
import { loopTurns, timeout } from './helpers/outcomes.js'
import { HOSTILE_PEER, runPython } from './peers/rel_spawn.js'

/** The inode of a socket fd, as /proc/net/unix lists it. */
function socketInode(fd: number): string {
  return /socket:\[(\d+)\]/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))![1]!
}

function unixInodes(): Set<string> {
  const lines = fs.readFileSync('/proc/net/unix', 'utf8').trim().split('\n').slice(1)
  return new Set(lines.map((l) => l.trim().split(/\s+/)[6]!))
}

test.serial(
  'a socket with SO_PASSCRED and SO_PASSPIDFD set by whoever made it: 253 fds still fit beside the credentials, every pidfd is closed',
  async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair()
      const peer = runPython(HOSTILE_PEER, ['pidfd'], { socket: theirs, timeoutMs: 30_000 })
      closeFds([theirs])
      // The socket the peer prepared, as a parent could hand one down.
      const handed = recvFds(mine, { maxBytes: 16 })
      t.is(handed.fds.length, 1)
      closeFds([mine])
      const sock = FdSocket.from(handed.fds[0]!)
      t.is(sock.type, 'seqpacket')
      const many = await sock.receive(timeout())
      t.is(many.data.toString(), 'many')
      t.is(many.fds.length, 253, 'no truncation: the buffer fits credentials, 253 fds and a pidfd')
      closeFds(many.fds)
      const credsOnly = await sock.receive(timeout())
      t.is(credsOnly.data.toString(), 'creds-only')
      t.deepEqual(credsOnly.fds, [])
      const one = await sock.receive(timeout())
      t.is(one.fds.length, 1)
      closeFds(one.fds)
      // No pidfd was kept (the audit would also see it).
      t.false(
        [...openFds().values()].some((target) => target.includes('pidfd')),
        'no pidfd is open',
      )
      await sock.send('k')
      const report = await peer.report
      t.true((report.reply as number) > 0)
      t.true(report.fd_audit_ok, JSON.stringify(report))
      sock.close()
    })
  },
)

test.serial(
  'a peer that sends fdpass its own socket back, with its own end: both arrive as plain fds, the end of stream waits for them, and the kernel frees both sockets once all is closed',
  async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair('seqpacket')
      const peer = runPython(HOSTILE_PEER, ['mirror'], { socket: theirs, timeoutMs: 30_000 })
      closeFds([theirs])
      const sock = FdSocket.from(mine)
      const inodes = [socketInode(sock.fd)]
      // Our own socket, sent to the peer, which sends it back.
      await sock.send('take this', [sock])
      const back = await sock.receive(timeout())
      t.is(back.data.toString(), 'back')
      t.is(back.fds.length, 2)
      t.is(socketInode(back.fds[0]!), inodes[0], 'the first is our own socket')
      inodes.push(socketInode(back.fds[1]!))
      // The peer has closed its copy; ours keeps its end open: no end of
      // stream until it is closed.
      const report = await peer.report
      t.is(report.mirrored, 1)
      t.true(report.fd_audit_ok, JSON.stringify(report))
      let settled = false
      const end = sock.receive(timeout(3000)).then(
        () => 'message',
        (err: NodeJS.ErrnoException) => err.code,
      )
      void end.finally(() => (settled = true))
      // An end of stream would be readable at once: the loop's next poll would deliver it.
      await loopTurns()
      t.false(settled, 'no end of stream while the peer end it sent us is open here')
      closeFds(back.fds)
      t.is(await end, 'ERR_SOCKET_CLOSED', 'the end of stream comes once the peer end we held is closed')
      sock.close()
      let left = inodes
      for (let i = 0; i < 100 && left.length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        const now = unixInodes()
        left = inodes.filter((ino) => now.has(ino))
      }
      t.deepEqual(left, [], 'both sockets are gone from /proc/net/unix')
    })
  },
)

test.serial(
  "a socket id names a socket of its own thread only: a worker given the main thread's id reaches nothing of the main thread",
  async (t) => {
    await withFdAudit(t, async () => {
      const dist = path.join(__dirname, '..', 'dist', 'src', 'internal')
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { native } = require(path.join(dist, 'native.js')) as { native: Record<string, any> }
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { lean, scratchInts } = require(path.join(dist, 'lean.js')) as {
        lean: Record<string, () => void>
        scratchInts: Int32Array
      }
      const [x, y] = native.socketPair('seqpacket') as [number, number]
      const got: string[] = []
      // Held until the end, as FdSocket holds its callback: the native side
      // keeps it only weakly while nothing is pending, and a collected one
      // would drop the read below.
      const onEvent = (kind: number, a: unknown): void => {
        if (kind === 1) got.push((a as Buffer).toString())
      }
      const main = new native.NativeSocket(x, 'seqpacket', false, false, 64, 4, onEvent, -1)
      sendFds(y, 'for the main thread')
      const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { native } = require(workerData.dist + '/native.js')
      const { lean, scratchInts } = require(workerData.dist + '/lean.js')
      const { sendFds, closeFds } = require(workerData.dist + '/../../index.js')
      const read = (id) => {
        scratchInts[0] = id; scratchInts[1] = 1; scratchInts[2] = 4
        try { lean.socketRead(); return 'result ' + scratchInts[0] } catch (e) { return 'threw ' + e.message }
      }
      const before = read(workerData.id)
      // Sockets of this thread until one has the main thread's number.
      const got = []
      const made = []
      let own
      for (let i = 0; i < 64 && own?.id !== workerData.id; i++) {
        const [x, y] = native.socketPair('seqpacket')
        own = new native.NativeSocket(x, 'seqpacket', false, false, 64, 4, (k, a) => { if (k === 1) got.push(a.toString()) }, -1)
        made.push([own, y])
      }
      sendFds(made[made.length - 1][1], 'for the worker')
      const after = read(workerData.id)
      for (const [s, y] of made) { s.close(); closeFds([y]) }
      parentPort.postMessage({ before, after, ownId: own.id, got })
    `
      const worker = new Worker(source, { eval: true, workerData: { dist, id: main.id } })
      const exited = once(worker, 'exit')
      const [report] = (await once(worker, 'message')) as [
        { before: string; after: string; ownId: number; got: string[] },
      ]
      await exited
      t.regex(report.before, /^threw/, 'an id from another thread finds nothing')
      t.is(report.ownId, main.id, 'the same number names a socket in each thread')
      t.deepEqual(report.got, ['for the worker'], 'with it the worker reads its own socket')
      // The main thread's message is still there, for the main thread.
      scratchInts[0] = main.id
      scratchInts[1] = 1
      scratchInts[2] = 4
      lean.socketRead!()
      t.deepEqual(got, ['for the main thread'])
      main.close()
      t.is(typeof onEvent, 'function')
      closeFds([y])
    })
  },
)
