/**
 * FdSocket#receiveMany: every message available now, in order, each with
 * exactly its own fds; waits only while there is none.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, FdSocket, sendFds, socketPair, type FdMessage, type SocketType } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { codeOf, loopTurns, timeout } from './helpers/outcomes.js'
import { openTempFile, readText } from './helpers/files.js'

const linux = process.platform === 'linux'
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-many-'))
const fileWith = (contents: string): number => openTempFile(tmp, contents, 'r')
const read = (fd: number): string => readText(fd, 0, 64)

// Socket kinds that keep message boundaries (an unframed stream does not).
const TYPES: Array<[SocketType, boolean]> = linux
  ? [
      ['stream', true],
      ['seqpacket', false],
      ['dgram', false],
    ]
  : [
      ['stream', true],
      ['dgram', false],
    ]

/** Checks message `i` of a run: payload `m<i>`, and `i % 3` fds reading `f<i>-<k>`. */
function checkMessage(t: { is(a: unknown, b: unknown, m?: string): void }, message: FdMessage, i: number): void {
  t.is(message.data.toString(), `m${i}`)
  t.is(message.fds.length, i % 3, `message ${i}: its own fds`)
  message.fds.forEach((fd, k) => t.is(read(fd), `f${i}-${k}`, `message ${i}, fd ${k}`))
}

for (const [type, framing] of TYPES) {
  test.serial(
    `receiveMany ${type}${framing ? ' framed' : ''}: everything available, at most max, in order`,
    async (t) => {
      await withFdAudit(t, async () => {
        const [a, b] = FdSocket.pair(type, { framing })
        const files: number[] = []
        const total = 10
        for (let i = 0; i < total; i++) {
          const fds = Array.from({ length: i % 3 }, (_, k) => fileWith(`f${i}-${k}`))
          files.push(...fds)
          await a.send(`m${i}`, fds)
        }
        closeFds(files)
        const sizes: number[] = []
        let next = 0
        try {
          while (next < total) {
            const batch = await b.receiveMany({ max: 4, ...timeout() })
            t.true(batch.length >= 1 && batch.length <= 4, `batch of ${batch.length}`)
            sizes.push(batch.length)
            for (const message of batch) {
              checkMessage(t, message, next++)
              closeFds(message.fds)
            }
          }
          t.is(next, total)
          t.true(sizes.length < total, `batched: ${sizes.join(', ')}`)
        } finally {
          a.close()
          b.close()
        }
      })
    },
  )
}

test.serial('receiveMany waits while nothing is there, then takes what one wake-up brings', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair()
    const f = fileWith('x')
    try {
      const pending = b.receiveMany(timeout())
      await loopTurns()
      // Three sends in one tick: the wait ends with at least the first.
      void a.send('m0', [f])
      void a.send('m1', [f])
      void a.send('m2', [f])
      const got: FdMessage[] = [...(await pending)]
      while (got.length < 3) got.push(...(await b.receiveMany(timeout())))
      t.deepEqual(
        got.map((m) => m.data.toString()),
        ['m0', 'm1', 'm2'],
      )
      for (const m of got) {
        t.is(m.fds.length, 1)
        t.is(read(m.fds[0]!), 'x')
        closeFds(m.fds)
      }
    } finally {
      closeFds([f])
      a.close()
      b.close()
    }
  })
})

test.serial(
  'receiveMany and receive() interleaved keep one order; 2,000 messages with fds while sending',
  async (t) => {
    await withFdAudit(t, async () => {
      const [a, b] = FdSocket.pair('stream', { readAhead: 8 })
      const total = 2000
      const sending = (async () => {
        const files: number[] = []
        for (let i = 0; i < total; i++) {
          const fds = Array.from({ length: i % 3 }, (_, k) => fileWith(`f${i}-${k}`))
          files.push(...fds)
          await a.send(`m${i}`, fds)
          if (i % 100 === 99) closeFds(files.splice(0))
        }
        closeFds(files)
      })()
      let next = 0
      let biggest = 0
      try {
        while (next < total) {
          if (next % 7 === 3) {
            const message = await b.receive(timeout())
            checkMessage(t, message, next++)
            closeFds(message.fds)
            continue
          }
          const batch = await b.receiveMany({ max: 16, ...timeout() })
          biggest = Math.max(biggest, batch.length)
          for (const message of batch) {
            checkMessage(t, message, next++)
            closeFds(message.fds)
          }
        }
        await sending
        t.is(next, total)
        t.true(biggest <= 16)
      } finally {
        a.close()
        b.close()
      }
    })
  },
)

test.serial('a waiting receiveMany takes one run of messages, in order, before later receive() calls', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair()
    try {
      // A receive() whose handler receives again, then a receiveMany(): the
      // first message goes to the receive(), the rest of that delivery to
      // the receiveMany(), and the receive() made later waits for the next.
      const first = b.receive(timeout()).then(async (m) => [m, await b.receive(timeout())])
      const many = b.receiveMany(timeout())
      await loopTurns()
      for (let i = 0; i < 6; i++) void a.send(`m${i}`)
      const batch = await many
      t.deepEqual(
        batch.map((m) => m.data.toString()),
        ['m1', 'm2', 'm3', 'm4', 'm5'],
      )
      await a.send('m6')
      const [m0, m6] = await first
      t.is(m0!.data.toString(), 'm0')
      t.is(m6!.data.toString(), 'm6')

      // A waiting receiveMany stops at its max; the rest stays queued.
      const two = b.receiveMany({ max: 2, ...timeout() })
      await loopTurns()
      for (let i = 7; i < 10; i++) void a.send(`m${i}`)
      t.deepEqual(
        (await two).map((m) => m.data.toString()),
        ['m7', 'm8'],
      )
      t.is((await b.receive(timeout())).data.toString(), 'm9')
    } finally {
      a.close()
      b.close()
    }
  })
})

test.serial('receiveMany: the messages before an error first, then the error; end of stream rejects', async (t) => {
  await withFdAudit(t, async () => {
    const f = fileWith('x')
    const [mine, theirs] = socketPair()
    const sock = FdSocket.from(mine)
    try {
      // Two good frames, then one announcing more fds than it carries.
      const frame = (payload: string, announced: number): Buffer => {
        const h = Buffer.alloc(8)
        h.writeUInt32LE(payload.length, 0)
        h.writeUInt16LE(announced, 4)
        return Buffer.concat([h, Buffer.from(payload)])
      }
      sendFds(theirs, frame('a', 1), [f])
      sendFds(theirs, frame('b', 0))
      sendFds(theirs, frame('c', 2), [f])
      const got: FdMessage[] = []
      let error: string | undefined
      while (error === undefined) {
        try {
          got.push(...(await sock.receiveMany(timeout())))
        } catch (err) {
          error = (err as NodeJS.ErrnoException).code
        }
      }
      t.deepEqual(
        got.map((m) => [m.data.toString(), m.fds.length]),
        [
          ['a', 1],
          ['b', 0],
        ],
      )
      t.is(error, 'ERR_FDPASS_PROTOCOL')
      for (const m of got) closeFds(m.fds)
      t.is(await codeOf(sock.receiveMany()), 'ERR_SOCKET_CLOSED')
    } finally {
      sock.close()
      closeFds([theirs, f])
    }

    // End of stream: what was sent, then ERR_SOCKET_CLOSED.
    const [a, b] = FdSocket.pair('seqpacket')
    try {
      await a.send('last', [f])
      a.close()
      const batch = await b.receiveMany(timeout())
      t.is(batch.length, 1)
      closeFds(batch[0]!.fds)
      t.is(await codeOf(b.receiveMany(timeout())), 'ERR_SOCKET_CLOSED')
    } finally {
      b.close()
    }
  })
})

test.serial('receiveMany: bad options reject before reading; abort and close end a wait', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair()
    const f = fileWith('kept')
    try {
      await a.send('waiting', [f])
      for (const max of [0, 4097, 1.5, -1]) {
        t.is(await codeOf(b.receiveMany({ max })), 'ERR_OUT_OF_RANGE', `max ${max}`)
      }
      t.is(await codeOf(b.receiveMany({ max: '2' as unknown as number })), 'ERR_INVALID_ARG_TYPE')
      t.is(await codeOf(b.receiveMany(7 as never)), 'ERR_INVALID_ARG_TYPE')
      // None of those read the message.
      const [m] = await b.receiveMany(timeout())
      t.is(m!.data.toString(), 'waiting')
      t.is(read(m!.fds[0]!), 'kept')
      closeFds(m!.fds)

      const controller = new AbortController()
      const aborted = b.receiveMany({ signal: controller.signal })
      await loopTurns() // aborted while it waits on the event loop
      controller.abort()
      t.is(await codeOf(aborted), 'ABORT_ERR')
      t.is(await codeOf(b.receiveMany({ signal: AbortSignal.abort() })), 'ABORT_ERR')

      const closing = b.receiveMany()
      await loopTurns() // closed while it waits on the event loop
      b.close()
      t.is(await codeOf(closing), 'ERR_SOCKET_CLOSED')
    } finally {
      closeFds([f])
      a.close()
      b.close()
    }
  })
})
