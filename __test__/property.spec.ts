import test from 'ava'
import fc from 'fast-check'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, FdSocket, type SocketType } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

// Random interleavings of send, receive and close on a pair, checked against
// a model: every message arrives once, in order, with exactly its own fds
// (each fd reads back what it was opened on), closed sockets refuse work, and
// no fd is left open at the end.

const types: SocketType[] = process.platform === 'linux' ? ['stream', 'seqpacket', 'dgram'] : ['stream', 'dgram']
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-prop-'))
const files = [0, 1, 2].map((i) => {
  const p = path.join(tmp, `f${i}`)
  fs.writeFileSync(p, `file ${i}`)
  return p
})

type Op =
  | { kind: 'send'; side: 0 | 1; size: number; fds: number }
  | { kind: 'receive'; side: 0 | 1 }
  | { kind: 'close'; side: 0 | 1 }

const side = fc.constantFrom<0 | 1>(0, 1)
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      side,
      size: fc.integer({ min: 1, max: 2000 }),
      fds: fc.integer({ min: 0, max: 3 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('receive' as const), side }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), side }) },
)

function read(fd: number): string {
  const buf = Buffer.alloc(64)
  return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString()
}

/** Fails instead of hanging: every operation of the model must settle. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within 2 s`)), 2000)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function code(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await within(promise, 'an operation')
    return undefined
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'no code'
  }
}

/** Messages received and checked (payload and fds) over all runs: the property is about them. */
let checkedMessages = 0

async function run(type: SocketType, ops: Op[]): Promise<void> {
  const sockets = FdSocket.pair(type)
  const opened = files.map((f) => fs.openSync(f, 'r'))
  // In flight from side s to side 1 - s: [payload, fd count] in order.
  const inFlight: Array<Array<[string, number]>> = [[], []]
  const closed = [false, false]
  // Destroyed by fdpass after an error or the end of the stream (not by close()).
  const destroyed = [false, false]
  let serial = 0
  try {
    for (const o of ops) {
      const me = sockets[o.side]
      const other = 1 - o.side
      if (o.kind === 'send') {
        const payload = `${serial++}:`.padEnd(o.size, 'x')
        const result = await code(me.send(payload, opened.slice(0, o.fds)))
        if (closed[o.side]) {
          if (result !== 'ERR_SOCKET_CLOSED') throw new Error(`send on a closed socket gave ${result}`)
        } else if (destroyed[o.side]) {
          // An error or the end of the stream destroyed it: one rule for all.
          if (result !== 'ERR_SOCKET_CLOSED') throw new Error(`send on a destroyed socket gave ${result}`)
        } else if (closed[other]) {
          if (result === undefined) throw new Error('send to a closed peer succeeded')
          if (!me.closed || me.fd !== -1) throw new Error(`${result} did not destroy the socket`)
          destroyed[o.side] = true
          // Linux purges a datagram socket's receive queue when a send finds
          // its peer gone (unix_dgram_disconnected): those messages are lost.
          if (type === 'dgram') inFlight[other] = []
        } else {
          if (result !== undefined) throw new Error(`send failed with ${result}`)
          inFlight[o.side]!.push([payload, o.fds])
        }
      } else if (o.kind === 'receive') {
        const expected = inFlight[other]!
        if (closed[o.side]) {
          const result = await code(me.receive())
          if (result !== 'ERR_SOCKET_CLOSED') throw new Error(`receive on a closed socket gave ${result}`)
        } else if (destroyed[o.side] && expected.length > 0) {
          // What was read ahead before the error is receivable, the rest went with the socket.
          const m = await within(
            me.receive().catch((err: Error) => err),
            'a receive on a destroyed socket',
          )
          if (m instanceof Error) {
            if ((m as NodeJS.ErrnoException).code !== 'ERR_SOCKET_CLOSED') throw m
            expected.length = 0
          } else {
            const [payload, fdCount] = expected.shift()!
            if (m.data.toString() !== payload || m.fds.length !== fdCount)
              throw new Error(`got ${m.data.toString().slice(0, 20)}`)
            closeFds(m.fds)
            checkedMessages++
          }
        } else if (expected.length > 0) {
          const m = await within(me.receive(), 'a receive of a message in flight')
          const [payload, fdCount] = expected.shift()!
          if (m.data.toString() !== payload)
            throw new Error(`got ${m.data.toString().slice(0, 20)}, expected ${payload.slice(0, 20)}`)
          if (
            m.fds.map(read).join() !==
            files
              .slice(0, fdCount)
              .map((_, i) => `file ${i}`)
              .join()
          ) {
            throw new Error(`message ${payload.slice(0, 8)} came with the wrong fds`)
          }
          closeFds(m.fds)
          checkedMessages++
        } else if (closed[other] && type !== 'dgram') {
          // End of stream; or ECONNRESET when the peer closed with data of
          // ours unread (the kernel's report), then end of stream.
          const result = await code(me.receive())
          if (result !== 'ERR_SOCKET_CLOSED' && result !== 'ECONNRESET') {
            throw new Error(`receive after the peer closed gave ${result}`)
          }
          if (!me.closed || me.fd !== -1) throw new Error(`${result} on receive did not destroy the socket`)
          destroyed[o.side] = true
        }
      } else if (!closed[o.side]) {
        me.close()
        closed[o.side] = true
        inFlight[o.side === 0 ? 1 : 0] = [] // what was sent to it is gone
      }
    }
  } finally {
    sockets.forEach((s) => s.close())
    closeFds(opened)
  }
}

test.serial(
  'property: random send/receive/close interleavings keep every message whole and leak nothing',
  async (t) => {
    await withFdAudit(t, async () => {
      let runs = 0
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...types), fc.array(op, { maxLength: 30 }), async (type, ops) => {
          runs++
          await run(type, ops)
        }),
        { numRuns: 150 },
      )
      // fc.assert throws at the first run that breaks the model; these say the runs happened.
      t.is(runs, 150)
      t.true(checkedMessages > 0, `${checkedMessages} messages were received and checked`)
    })
  },
)
