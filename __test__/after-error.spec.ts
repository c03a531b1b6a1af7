/**
 * One rule for a socket after the end of the stream or an error the
 * connection cannot survive, as Node's net.Socket is destroyed by one: the
 * socket is closed (`closed`, `fd` -1), messages read before stay
 * receivable, and every later call rejects with ERR_SOCKET_CLOSED. Each path
 * that leads there is tested on its own.
 */
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { bind, closeFds, connect, FdSocket, sendFds, socketPair, type FdSocket as Socket } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { codeOf, timeout } from './helpers/outcomes.js'
import { openTempFile, readText } from './helpers/files.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-after-error-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** What every destroyed socket shows, whatever destroyed it. */
async function checkDestroyed(t: ExecutionContext, socket: Socket, cause: string): Promise<void> {
  t.true(socket.closed, `closed after ${cause}`)
  await socket.whenClosed() // resolved, as for close()
  t.is(socket.fd, -1, `fd is -1 after ${cause}`)
  const send = await socket.send('more').catch((err: NodeJS.ErrnoException) => err)
  t.is((send as NodeJS.ErrnoException).code, 'ERR_SOCKET_CLOSED', `send after ${cause}`)
  t.regex((send as Error).message, /closed/)
  t.is(await codeOf(socket.receive(timeout())), 'ERR_SOCKET_CLOSED', `receive after ${cause}`)
  t.is(await codeOf(socket.receiveMany(timeout())), 'ERR_SOCKET_CLOSED', `receiveMany after ${cause}`)
  t.throws(() => socket.peerCredentials(), { code: 'ERR_SOCKET_CLOSED' })
  t.is(socket.writableLength, 0)
  t.is(socket.unref().ref(), socket) // harmless, as on a closed socket
  // Iteration ends instead of throwing, as at the end of the stream.
  for await (const message of socket) t.fail(`iterated ${message.data.toString()}`)
  socket.close() // still fine, and releases anything left
  t.true(socket.closed)
}

test.serial('EPIPE on a send destroys the socket; what the peer sent before it left is still received', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = socketPair()
    const socket = FdSocket.from(mine)
    const f = openTempFile(tmp, 'kept', 'r')
    sendFds(theirs, Buffer.from([5, 0, 0, 0, 1, 0, 0, 0, ...Buffer.from('reply')]), [f]) // one frame, one fd
    closeFds([theirs])
    let closedSeen = false
    void socket.whenClosed().then(() => (closedSeen = true))
    // A stream peer that left with nothing of ours unread: the send sees EPIPE.
    t.is(await codeOf(socket.send('request')), 'EPIPE')
    t.true(socket.closed)
    t.true(closedSeen, 'whenClosed() resolved as the error closed the socket, before the send rejected')
    const reply = await socket.receive(timeout())
    t.is(reply.data.toString(), 'reply')
    t.is(readText(reply.fds[0]!, 0, 16), 'kept')
    closeFds([...reply.fds, f])
    await checkDestroyed(t, socket, 'EPIPE')
  })
})

test.serial('EPIPE on a queued send (the peer leaves while sends wait for room) destroys the socket', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = socketPair()
    const socket = FdSocket.from(mine)
    const f = openTempFile(tmp, 'queued', 'r')
    const big = Buffer.alloc(64 * 1024, 1)
    const sends: Array<Promise<string | undefined>> = []
    while (socket.writableLength === 0 && sends.length < 1000) sends.push(codeOf(socket.send(big, [f])))
    t.true(socket.writableLength > 0, 'a send is queued')
    closeFds([theirs])
    const codes = await Promise.all(sends)
    const failed = codes.filter((c) => c !== undefined)
    t.true(failed.length > 0)
    for (const code of failed) t.true(code === 'EPIPE' || code === 'ECONNRESET', String(code))
    await checkDestroyed(t, socket, failed[0]!)
    closeFds([f])
  })
})

test.serial('ECONNRESET on a receive (the peer left with our data unread) destroys the socket', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = socketPair()
    const socket = FdSocket.from(mine)
    await socket.send('never read')
    closeFds([theirs])
    const code = await codeOf(socket.receive(timeout()))
    // Linux reports the reset; the end of the stream is the same rule.
    t.true(code === 'ECONNRESET' || code === 'ERR_SOCKET_CLOSED', String(code))
    await checkDestroyed(t, socket, String(code))
  })
})

test.serial('ECONNREFUSED on a datagram send (the bound receiver is gone) destroys the socket', async (t) => {
  await withFdAudit(t, async () => {
    const where = path.join(tmp, 'gone.sock')
    const receiver = await bind(where)
    const sender = await connect(where, { type: 'dgram' })
    await sender.send('hello')
    const got = await receiver.receive(timeout())
    t.is(got.data.toString(), 'hello')
    await receiver.close()
    const code = await codeOf(sender.send('anyone?'))
    t.true(code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ENOTCONN', String(code))
    await checkDestroyed(t, sender, String(code))
  })
})

for (const type of process.platform === 'linux' ? (['stream', 'seqpacket'] as const) : (['stream'] as const)) {
  test.serial(`the end of the stream (${type}) destroys the socket after the last message is received`, async (t) => {
    await withFdAudit(t, async () => {
      const [a, b] = FdSocket.pair(type)
      const f = openTempFile(tmp, 'last', 'r')
      await b.send('last', [f])
      b.close()
      const last = await a.receive(timeout())
      t.is(last.data.toString(), 'last')
      closeFds([...last.fds, f])
      t.is(await codeOf(a.receive(timeout())), 'ERR_SOCKET_CLOSED')
      // Not EPIPE on the next send: the socket is gone, as a net.Socket after 'end'.
      await checkDestroyed(t, a, 'the end of the stream')
    })
  })
}

test.serial('a framing protocol error destroys the socket; messages before it are still received', async (t) => {
  await withFdAudit(t, async () => {
    const [mine, theirs] = socketPair()
    const socket = FdSocket.from(mine)
    // A good frame, then a header with reserved bits set.
    sendFds(theirs, Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 0x6f, 0x6b, 1, 0, 0, 0, 0, 0, 1, 0, 0x21]))
    const ok = await socket.receive(timeout())
    t.is(ok.data.toString(), 'ok')
    const err = await socket.receive(timeout()).catch((e: NodeJS.ErrnoException) => e)
    t.is((err as NodeJS.ErrnoException).code, 'ERR_FDPASS_PROTOCOL')
    // The message names the socket and the option to change.
    t.regex((err as Error).message, /framed stream socket: .* set the framing option to false/)
    await checkDestroyed(t, socket, 'ERR_FDPASS_PROTOCOL')
    closeFds([theirs])
  })
})

test.serial(
  'errors that concern one message leave the socket open: bad arguments, a datagram over maxBytes',
  async (t) => {
    await withFdAudit(t, async () => {
      const [a, b] = FdSocket.pair('dgram', { maxBytes: 4 })
      t.is(await codeOf(a.send('', [0])), 'ERR_EMPTY_DATA')
      t.is(await codeOf(a.send('x', ['no' as unknown as number])), 'ERR_INVALID_ARG_TYPE')
      await a.send('too long')
      await a.send('fine')
      const long = await b.receive(timeout()).catch((e: NodeJS.ErrnoException) => e)
      t.is((long as NodeJS.ErrnoException).code, 'ERR_MESSAGE_TRUNCATED')
      t.regex((long as Error).message, /raise maxBytes .*\(on a dgram socket\)$/)
      t.is((await b.receive(timeout())).data.toString(), 'fine')
      t.false(a.closed)
      t.false(b.closed)
      a.close()
      b.close()
    })
  },
)
