/**
 * Empty sends: what each socket type does with them, and an ERR_EMPTY_DATA
 * message that names the actual socket type (and the option to change).
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, FdSocket, sendFds, socketPair, SyncSocket, type SocketType } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { timeout } from './helpers/outcomes.js'
import { openTempFile } from './helpers/files.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-empty-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))
const types: SocketType[] = process.platform === 'linux' ? ['stream', 'seqpacket', 'dgram'] : ['stream', 'dgram']

for (const type of types) {
  test.serial(`ERR_EMPTY_DATA on a ${type} socket names it`, async (t) => {
    await withFdAudit(t, async () => {
      const f = openTempFile(tmp, 'x', 'r')
      const name = type === 'stream' ? 'unframed stream' : type
      const [a, b] = FdSocket.pair(type, { framing: false })
      const err = await a.send('', [f]).catch((e: NodeJS.ErrnoException) => e)
      t.is((err as NodeJS.ErrnoException).code, 'ERR_EMPTY_DATA')
      t.regex((err as Error).message, new RegExp(`on this ${name} socket`))
      if (type === 'stream') t.regex((err as Error).message, /framing option/)
      else t.notRegex((err as Error).message, /stream socket|framing/)
      a.close()
      b.close()
      const [x, y] = SyncSocket.pair(type)
      t.throws(() => x.send('', [f]), { code: 'ERR_EMPTY_DATA', message: new RegExp(`on this ${type} socket`) })
      x.close()
      y.close()
      const [p, q] = socketPair(type)
      // A bare fd number: the type is not known, and the message does not guess.
      t.throws(() => sendFds(p, '', [f]), { code: 'ERR_EMPTY_DATA', message: /on this socket/ })
      closeFds([p, q, f])
    })
  })
}

test.serial("framing: false: send('') on a stream resolves and sends nothing, as net.Socket's write('')", async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair('stream', { framing: false })
    await a.send('')
    await a.send('next')
    const m = await b.receive(timeout())
    t.is(m.data.toString(), 'next')
    a.close()
    b.close()
  })
})

test.serial("framed: send('') is a message of its own, with or without fds", async (t) => {
  await withFdAudit(t, async () => {
    const f = openTempFile(tmp, 'x', 'r')
    const [a, b] = FdSocket.pair()
    await a.send('')
    await a.send('', [f])
    const first = await b.receive(timeout())
    const second = await b.receive(timeout())
    t.deepEqual([first.data.length, first.fds.length, second.data.length, second.fds.length], [0, 0, 0, 1])
    closeFds([...second.fds, f])
    a.close()
    b.close()
  })
})

test.serial("dgram: send('') without fds is an empty datagram", async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair('dgram')
    await a.send('')
    t.is((await b.receive(timeout())).data.length, 0)
    a.close()
    b.close()
  })
})

const linuxOnly = process.platform === 'linux' ? test.serial : test.serial.skip
linuxOnly(
  `seqpacket: send('') without fds is refused${process.platform === 'linux' ? '' : ' (skipped: seqpacket sockets exist on Linux only)'}`,
  async (t) => {
    await withFdAudit(t, async () => {
      const [c, d] = FdSocket.pair('seqpacket')
      const err = await c.send('').catch((e: NodeJS.ErrnoException) => e)
      t.is((err as NodeJS.ErrnoException).code, 'ERR_EMPTY_DATA')
      t.regex((err as Error).message, /seqpacket/)
      c.close()
      d.close()
    })
  },
)
