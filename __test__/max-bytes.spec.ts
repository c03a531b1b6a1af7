/**
 * maxBytes: the default serves real messages (JSON metadata with fds runs
 * past 64 KiB), a larger message is refused with an error that names the
 * option to raise, and the memory a socket holds follows what arrived, not
 * its limit.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, DEFAULT_SOCKET_MAX_BYTES, FdSocket, sendFds, type SocketType } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'
import { codeOf, loopTurns, timeout } from './helpers/outcomes.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-max-'))
const KiB = 1024
const MiB = 1024 * KiB

/** A payload of `n` bytes whose content depends on its position. */
function payload(n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i += 4093) b[i] = (i / 4093) & 255
  b[n - 1] = 42
  return b
}

test('the default maxBytes is a few MiB', (t) => {
  t.is(DEFAULT_SOCKET_MAX_BYTES, 4 * MiB)
})

test.serial(
  'framed stream, default maxBytes: 71 KB, 1 MiB and exactly the limit round-trip with their fd',
  async (t) => {
    await withFdAudit(t, async () => {
      const [a, b] = FdSocket.pair('stream')
      for (const size of [71 * 1000, MiB, DEFAULT_SOCKET_MAX_BYTES - 1, DEFAULT_SOCKET_MAX_BYTES]) {
        const f = openTempFile(tmp, `file-${size}`)
        const data = payload(size)
        const [, m] = await Promise.all([a.send(data, [f]), b.receive(timeout())])
        closeFds([f])
        t.true(m.data.equals(data), `${size} bytes arrive intact`)
        t.is(m.fds.length, 1)
        t.is(readText(m.fds[0]!), `file-${size}`)
        closeFds(m.fds)
      }
      a.close()
      b.close()
    })
  },
)

test.serial(
  'framed stream: one byte over maxBytes is a protocol error naming the option; its fd is closed',
  async (t) => {
    await withFdAudit(t, async () => {
      for (const max of [1000, DEFAULT_SOCKET_MAX_BYTES]) {
        const [a, b] = FdSocket.pair('stream', max === 1000 ? { maxBytes: max } : undefined)
        const f = openTempFile(tmp, 'refused')
        // Exactly the limit first: accepted.
        const [, ok] = await Promise.all([a.send(payload(max), [f]), b.receive(timeout())])
        closeFds(ok.fds)
        const sending = a.send(payload(max + 1), [f]).catch(() => {})
        closeFds([f])
        const err = await t.throwsAsync(b.receive(timeout()))
        t.is((err as NodeJS.ErrnoException).code, 'ERR_FDPASS_PROTOCOL', `limit ${max}`)
        t.regex(
          err!.message,
          new RegExp(
            `announces ${max + 1} bytes, more than maxBytes \\(${max}\\): raise the receiving socket's maxBytes option`,
          ),
        )
        a.close()
        await sending
        b.close()
      }
    })
  },
)

for (const type of ['seqpacket', 'dgram'] as SocketType[]) {
  test.serial(
    `${type}: 71 KB round-trips by default; maxBytes ± 1 accepted and refused with ERR_MESSAGE_TRUNCATED`,
    async (t) => {
      await withFdAudit(t, async () => {
        {
          const [a, b] = FdSocket.pair(type)
          const data = payload(71 * 1000)
          await a.send(data)
          t.true((await b.receive(timeout())).data.equals(data))
          a.close()
          b.close()
        }
        const max = 5000
        const [a, b] = FdSocket.pair(type, { maxBytes: max })
        const f = openTempFile(tmp, 'x')
        for (const size of [max - 1, max, max + 1]) await a.send(payload(size), [f])
        closeFds([f])
        for (const size of [max - 1, max]) {
          const m = await b.receive(timeout())
          t.is(m.data.length, size)
          closeFds(m.fds)
        }
        const err = await t.throwsAsync(b.receive(timeout()))
        t.is((err as NodeJS.ErrnoException).code, 'ERR_MESSAGE_TRUNCATED')
        t.regex(err!.message, /raise maxBytes/)
        a.close()
        b.close()
      })
    },
  )
}

/** Resident memory, in bytes, after a GC. */
function rss(): number {
  globalThis.gc?.()
  return process.memoryUsage.rss()
}

test.serial(
  'RSS follows what arrived: 200 sockets with a maxBytes of 4 MiB hold far less than 200 × 4 MiB',
  async (t) => {
    await withFdAudit(t, async () => {
      const sockets: FdSocket[] = []
      const before = rss()
      // Datagram sockets that each received a message, and framed streams
      // whose peer announced the full 4 MiB and sent 10 bytes of it.
      for (let i = 0; i < 100; i++) {
        const [a, b] = FdSocket.pair(i % 2 === 0 ? 'seqpacket' : 'dgram', { maxBytes: 4 * MiB })
        await a.send('small')
        t.is((await b.receive(timeout())).data.toString(), 'small')
        sockets.push(a, b)
      }
      const pending: Array<Promise<string | undefined>> = []
      for (let i = 0; i < 100; i++) {
        const [a, b] = FdSocket.pair('stream', { maxBytes: 4 * MiB })
        const header = Buffer.alloc(8)
        header.writeUInt32LE(4 * MiB, 0)
        sendFds(a.fd, Buffer.concat([header, Buffer.alloc(10, 1)]), [])
        pending.push(codeOf(b.receive()))
        sockets.push(a, b)
      }
      // The event loop reads what the stream peers sent (it is in the kernel already).
      await loopTurns()
      const grown = rss() - before
      t.log(`RSS grew by ${(grown / MiB).toFixed(1)} MiB for 200 sockets`)
      t.true(grown < 64 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`)
      for (const s of sockets) s.close()
      t.deepEqual(new Set(await Promise.all(pending)), new Set(['ERR_SOCKET_CLOSED']))
    })
  },
)
