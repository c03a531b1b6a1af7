/**
 * A closed server adopts nothing: connections accepted in the batch during
 * which `allowPeer` closes the server, or after `close()`, are closed at
 * once (their clients see the end of the stream), and `accept()` rejects.
 * `allowPeer` that throws, or is async, refuses the peer.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { connect, listen, type FdSocket } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { codeOf, timeout } from './helpers/outcomes.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-server-close-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** `n` clients connected (waiting in the backlog) before anyone accepts. */
async function clients(socketPath: string, n: number): Promise<FdSocket[]> {
  const all: FdSocket[] = []
  for (let i = 0; i < n; i++) all.push(await connect(socketPath))
  return all
}

/** What each client sees: 'served' when the server sends to it, else how its receive ended. */
async function outcomes(socks: FdSocket[], served: FdSocket[]): Promise<string[]> {
  await Promise.all(served.map((s) => s.send('hello')))
  return Promise.all(
    socks.map(async (c) => {
      try {
        const m = await c.receive(timeout(5000))
        return m.data.toString() === 'hello' ? 'served' : 'other'
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? String(err)
      }
    }),
  )
}

test.serial(
  'allowPeer closing the server: no connection of its batch is handed out, each is closed, accept() rejects',
  async (t) => {
    await withFdAudit(t, async () => {
      const socketPath = path.join(tmp, 'closing.sock')
      let calls = 0
      const server = await listen(socketPath, {
        allowPeer: () => {
          calls++
          void server.close()
          return true
        },
      })
      const socks = await clients(socketPath, 3)
      // One accept takes the whole backlog in one batch; the first check
      // closes the server.
      t.is(await codeOf(server.accept(timeout(5000))), 'ERR_SOCKET_CLOSED')
      t.is(await codeOf(server.accept()), 'ERR_SOCKET_CLOSED', 'accept() after close()')
      t.is(calls, 1, 'allowPeer runs no more once the server is closed')
      // Every client sees its connection end: none is left open by the server.
      t.deepEqual(await outcomes(socks, []), ['ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED'])
      t.false(fs.existsSync(socketPath))
      for (const c of socks) c.close()
    })
  },
)

test.serial('allowPeer closing the server while an accept() waits on the event loop', async (t) => {
  await withFdAudit(t, async () => {
    const socketPath = path.join(tmp, 'closing-waiting.sock')
    const server = await listen(socketPath, {
      allowPeer: () => {
        void server.close()
        return true
      },
    })
    const pending = server.accept(timeout(5000))
    const iterated: FdSocket[] = []
    const loop = (async () => {
      for await (const s of server) iterated.push(s)
    })()
    const socks = await clients(socketPath, 2)
    t.is(await codeOf(pending), 'ERR_SOCKET_CLOSED')
    await loop
    t.deepEqual(iterated, [], 'the iterator ends without a connection')
    t.deepEqual(await outcomes(socks, []), ['ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED'])
    for (const c of socks) c.close()
  })
})

test.serial('allowPeer that throws refuses that peer only; the others are served', async (t) => {
  await withFdAudit(t, async () => {
    const socketPath = path.join(tmp, 'throwing.sock')
    let calls = 0
    const server = await listen(socketPath, {
      allowPeer: () => {
        if (calls++ === 0) throw new Error('check failed')
        return true
      },
    })
    const socks = await clients(socketPath, 3)
    const a = await server.accept(timeout(5000))
    const b = await server.accept(timeout(5000))
    t.deepEqual(await outcomes(socks, [a, b]), ['ERR_SOCKET_CLOSED', 'served', 'served'])
    a.close()
    b.close()
    for (const c of socks) c.close()
    await server.close()
  })
})

test.serial('an async allowPeer refuses every peer (it must decide synchronously)', async (t) => {
  await withFdAudit(t, async () => {
    const socketPath = path.join(tmp, 'async.sock')
    // A JavaScript caller can pass one; TypeScript refuses the Promise type.
    const allowPeer = (async () => true) as unknown as () => boolean
    const server = await listen(socketPath, { allowPeer })
    const socks = await clients(socketPath, 2)
    const accepted = server.accept(timeout(500))
    t.deepEqual(await outcomes(socks, []), ['ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED'])
    t.is(await codeOf(accepted), 'ABORT_ERR', 'nobody was handed out')
    for (const c of socks) c.close()
    await server.close()
  })
})

test.serial('connections waiting when close() is called are never handed out', async (t) => {
  await withFdAudit(t, async () => {
    const socketPath = path.join(tmp, 'backlog.sock')
    const server = await listen(socketPath)
    const socks = await clients(socketPath, 2)
    await server.close()
    t.is(await codeOf(server.accept()), 'ERR_SOCKET_CLOSED')
    const ends = await outcomes(socks, [])
    for (const end of ends) t.true(['ERR_SOCKET_CLOSED', 'ECONNRESET'].includes(end), end)
    for (const c of socks) c.close()
  })
})
