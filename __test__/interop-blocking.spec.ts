/**
 * Blocking peers that nobody in fdpass wrote the way fdpass would: C, Python
 * and Go programs doing plain blocking recvmsg/sendmsg on the socket they
 * inherit, while fdpass drives the other end (or shares the listener).
 * fdpass never sets O_NONBLOCK on a socket someone else may hold, so none
 * of them sees EAGAIN. Each exchanges fds both ways with every fdpass
 * socket type: pair ends, a connected and an accepted path socket, and
 * SyncSocket; the fd table of every process is audited.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, connect, FdSocket, listen, SyncSocket, type FdMessage, type SocketType } from 'fdpass'

import { buildPeers, runPeer, type BlockingPeer, type PeerReport } from './helpers/blocking-peers.js'
import { withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'
import { timeout } from './helpers/outcomes.js'

const ROUNDS = 3
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-blocking-'))
let peers: BlockingPeer[] = []
let sockets = 0

test.before(() => {
  peers = buildPeers()
})

/** O_NONBLOCK of `fd`, read from /proc/self/fdinfo (independently of fdpass). */
function isNonblocking(fd: number): boolean {
  const flags = /^flags:\s+(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))
  return (parseInt(flags![1]!, 8) & fs.constants.O_NONBLOCK) !== 0
}

/** One message each way: what fdpass sends in round `r`, and checks of the answer. */
interface Side {
  send(data: string, fds: number[]): Promise<void> | void
  receive(): Promise<FdMessage> | FdMessage
}

async function converse(
  t: import('ava').ExecutionContext,
  peer: BlockingPeer,
  side: Side,
  report: Promise<PeerReport>,
  what: string,
) {
  for (let r = 0; r < ROUNDS; r++) {
    const a = openTempFile(tmp, `node-${r}-a`)
    const b = openTempFile(tmp, `node-${r}-b`)
    const inode = fs.fstatSync(a).ino
    await side.send(`msg-${r}`, [a, b])
    closeFds([a, b])
    const m = await side.receive()
    try {
      t.is(m.data.toString(), `ack:${peer.lang}:node-${r}-a,node-${r}-b`, what)
      t.deepEqual(
        m.fds.map((fd) => readText(fd, 0, 64)),
        [`node-${r}-a`, `node-${r}-b`, `${peer.lang}-${r}`],
        what,
      )
      t.is(fs.fstatSync(m.fds[0]!).ino, inode, `${what}: the very file went there and back`)
    } finally {
      closeFds(m.fds)
    }
  }
  const done = await report
  t.deepEqual(
    done.got,
    Array.from({ length: ROUNDS }, (_, r) => `msg-${r}`),
    what,
  )
  t.false(done.nonblock_seen, `${what}: the peer's socket never became non-blocking`)
  t.true(done.fd_audit_ok, `${what}: the peer's fd table came back`)
}

/**
 * A side over `sock` that also records, after each message it receives (the
 * event loop has polled the socket by then), whether the socket was
 * non-blocking: `modes` stays all false when fdpass leaves the mode alone.
 */
function onFdSocket(sock: FdSocket, modes: boolean[] = []): Side {
  return {
    send: (d, fds) => sock.send(d, fds),
    receive: async () => {
      const message = await sock.receive(timeout())
      // Once the peer is gone the end of the stream may have closed the socket.
      if (!sock.closed) modes.push(isNonblocking(sock.fd))
      return message
    },
  }
}

const PAIRS: Array<[SocketType, boolean]> = [
  ['stream', true],
  ['stream', false],
  ['seqpacket', false],
  ['dgram', false],
]

for (const [type, framing] of PAIRS) {
  const kind = `${type}${framing ? ' framed' : ''}`
  test.serial(`FdSocket.pair ${kind}: a blocking C, Python and Go peer on the other end`, async (t) => {
    for (const peer of peers) {
      await withFdAudit(t, async () => {
        const [mine, theirs] = FdSocket.pair(type, { framing })
        const report = runPeer(peer, theirs.fd, framing, ROUNDS)
        theirs.close()
        try {
          const modes: boolean[] = []
          await converse(t, peer, onFdSocket(mine, modes), report, `${peer.lang} ${kind}`)
          t.true(modes.length > 0, 'the mode was seen while the conversation went on')
          t.deepEqual(
            modes,
            modes.map(() => false),
            'our end is as blocking as it was made',
          )
        } finally {
          mine.close()
          await report.catch(() => {})
        }
      })
    }
  })
}

const CONNECTED: Array<['stream' | 'seqpacket', boolean]> = [
  ['stream', true],
  ['stream', false],
  ['seqpacket', false],
]

for (const [type, framing] of CONNECTED) {
  const kind = `${type}${framing ? ' framed' : ''}`
  test.serial(`path socket ${kind}: a blocking peer holds the connected end, then the accepted end`, async (t) => {
    for (const peer of peers) {
      for (const peerHolds of ['connected', 'accepted'] as const) {
        await withFdAudit(t, async () => {
          const file = path.join(tmp, `s${sockets++}`)
          const server = await listen(file, { type, framing })
          const client = await connect(file, { type, framing })
          const accepted = await server.accept(timeout())
          await server.close()
          const [theirs, mine] = peerHolds === 'connected' ? [client, accepted] : [accepted, client]
          t.false(isNonblocking(theirs.fd), `${peerHolds}: fdpass hands it over blocking`)
          const report = runPeer(peer, theirs.fd, framing, ROUNDS)
          theirs.close()
          try {
            await converse(t, peer, onFdSocket(mine), report, `${peer.lang} ${kind}, peer holds the ${peerHolds} end`)
          } finally {
            mine.close()
            await report.catch(() => {})
          }
        })
      }
    }
  })
}

for (const type of ['stream', 'seqpacket', 'dgram'] as const) {
  test.serial(`SyncSocket.pair ${type}: a blocking peer on the other end`, async (t) => {
    for (const peer of peers) {
      await withFdAudit(t, async () => {
        const [mine, theirs] = SyncSocket.pair(type)
        const report = runPeer(peer, theirs.fd, false, ROUNDS)
        theirs.close()
        try {
          // The peer answers each message before it waits for the next: a
          // blocking receive here waits for that answer only.
          await converse(
            t,
            peer,
            { send: (d, fds) => void mine.send(d, fds), receive: () => mine.receive() },
            report,
            `${peer.lang} SyncSocket ${type}`,
          )
        } finally {
          mine.close()
          await report.catch(() => {})
        }
      })
    }
  })
}

test.serial('no socket fdpass makes, adopts or accepts gets O_NONBLOCK; only its own listener has it', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair('stream')
    const sa = await a.send('x').then(() => b.receive())
    t.false(isNonblocking(a.fd) || isNonblocking(b.fd), 'pair ends, after a send and a receive')
    const raw = SyncSocket.pair('seqpacket')
    const adopted = FdSocket.from(raw[0].fd, {})
    const pending = adopted.receive()
    raw[1].send('y')
    await pending
    t.false(isNonblocking(adopted.fd), 'FdSocket.from() leaves the mode as it was, while a receive waits and after')
    const file = path.join(tmp, `s${sockets++}`)
    const server = await listen(file)
    const client = await connect(file)
    const accepted = await server.accept(timeout())
    t.false(isNonblocking(client.fd), 'connect()')
    t.false(isNonblocking(accepted.fd), 'accepted')
    t.true(isNonblocking(server.fd), 'the listening socket fdpass made itself (documented)')
    closeFds(sa.fds)
    for (const s of [a, b, adopted, client, accepted]) s.close()
    raw[1].close()
    await server.close()
  })
})
