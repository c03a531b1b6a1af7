import test, { type ExecutionContext } from 'ava'
import * as dgram from 'node:dgram'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

import { fdKind, FdSocket, type FdLike } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-interop-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))
let counter = 0

/** A new file holding `contents`; returns its path. */
function fileWith(contents: string): string {
  const file = path.join(tmp, `f${counter++}`)
  fs.writeFileSync(file, contents)
  return file
}

/** Sends `value` over a fresh FdSocket pair and returns the one fd that arrives (yours to close). */
async function passOne(t: ExecutionContext, value: FdLike): Promise<number> {
  const [a, b] = FdSocket.pair()
  try {
    await a.send('here', [value])
    const { data, fds } = await b.receive()
    t.is(data.toString(), 'here')
    t.is(fds.length, 1)
    return fds[0]!
  } finally {
    a.close()
    b.close()
  }
}

/** Reads from `fd` at `position` (null: at the current offset, or the next datagram). */
function readAt(fd: number, position: number | null, length = 256): string {
  const buf = Buffer.alloc(length)
  return buf.subarray(0, fs.readSync(fd, buf, 0, length, position)).toString()
}

const listening = (server: net.Server) =>
  new Promise<number>((resolve, reject) =>
    server.once('error', reject).listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  )
const closed = (server: net.Server) => new Promise<void>((resolve) => server.close(() => resolve()))

test.serial('send accepts an fd number: a file, read through the received fd', async (t) => {
  await withFdAudit(t, async () => {
    const fd = fs.openSync(fileWith('through a number'), 'r')
    const received = await passOne(t, fd)
    t.not(received, fd)
    t.is(fdKind(received), 'file')
    t.is(readAt(received, 0), 'through a number')
    fs.closeSync(received)
    fs.closeSync(fd)
  })
})

test.serial('send accepts { fd }: a file written through the received fd', async (t) => {
  await withFdAudit(t, async () => {
    const file = fileWith('')
    const fd = fs.openSync(file, 'w')
    const received = await passOne(t, { fd })
    t.is(fdKind(received), 'file')
    fs.writeSync(received, 'written through { fd }')
    fs.closeSync(received)
    fs.closeSync(fd)
    t.is(fs.readFileSync(file, 'utf8'), 'written through { fd }')
  })
})

test.serial('send accepts a FileHandle: the file is read through the received fd', async (t) => {
  await withFdAudit(t, async () => {
    const handle = await fs.promises.open(fileWith('through a FileHandle'), 'r')
    try {
      const received = await passOne(t, handle)
      t.not(received, handle.fd)
      t.is(fdKind(received), 'file')
      t.is(readAt(received, 0), 'through a FileHandle')
      fs.closeSync(received)
    } finally {
      await handle.close()
    }
  })
})

test.serial('send accepts a connected net.Socket: the peer gets what is written through the received fd', async (t) => {
  await withFdAudit(t, async () => {
    const server = net.createServer()
    const port = await listening(server)
    const accepted = once(server, 'connection') as Promise<[net.Socket]>
    const client = net.connect(port, '127.0.0.1')
    await once(client, 'connect')
    const [serverSide] = await accepted
    try {
      const received = await passOne(t, client)
      t.is(fdKind(received), 'socket')
      const got = once(serverSide, 'data')
      fs.writeSync(received, 'through the received fd')
      t.is(String((await got)[0]), 'through the received fd')
      fs.closeSync(received)
    } finally {
      client.destroy()
      serverSide.destroy()
      await closed(server)
    }
  })
})

test.serial(
  'send accepts a listening net.Server: the received fd keeps accepting after the original closes',
  async (t) => {
    await withFdAudit(t, async () => {
      const original = net.createServer()
      const port = await listening(original)
      const received = await passOne(t, original)
      t.is(fdKind(received), 'socket')
      await closed(original)
      // The same listening socket, now served through the received fd (the server owns it).
      const adopted = net.createServer((conn) => conn.end('accepted through the received fd'))
      await new Promise<void>((resolve, reject) => adopted.once('error', reject).listen({ fd: received }, resolve))
      try {
        t.is((adopted.address() as net.AddressInfo).port, port)
        const client = net.connect(port, '127.0.0.1')
        let reply = ''
        client.setEncoding('utf8').on('data', (chunk) => (reply += chunk))
        await once(client, 'end')
        client.destroy()
        t.is(reply, 'accepted through the received fd')
      } finally {
        await closed(adopted)
      }
    })
  },
)

test.serial('send accepts a bound dgram.Socket: the received fd reads datagrams sent to its port', async (t) => {
  await withFdAudit(t, async () => {
    const original = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => original.bind(0, '127.0.0.1', resolve))
    const { port } = original.address()
    const received = await passOne(t, original)
    t.is(fdKind(received), 'socket')
    // Close the original so that only the received fd reads from the socket.
    await new Promise<void>((resolve) => original.close(resolve))
    const sender = dgram.createSocket('udp4')
    try {
      await new Promise<void>((resolve, reject) =>
        sender.send('a datagram', port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
      )
      // The socket is non-blocking (Node made it so): poll, bounded.
      let got: string | undefined
      for (let i = 0; got === undefined && i < 100; i++) {
        try {
          got = readAt(received, null)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      }
      t.is(got, 'a datagram')
    } finally {
      fs.closeSync(received)
      await new Promise<void>((resolve) => sender.close(resolve))
    }
  })
})

test.serial('send rejects what has no fd with a TypeError and a code, and sends nothing', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair()
    const closedHandle = await fs.promises.open(fileWith('closed'), 'r')
    await closedHandle.close()
    const idleServer = net.createServer()
    const unconnected = new net.Socket()
    const unbound = dgram.createSocket('udp4')
    const closedDgram = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => closedDgram.bind(0, '127.0.0.1', resolve))
    await new Promise<void>((resolve) => closedDgram.close(resolve))
    const fd = fs.openSync(fileWith('valid'), 'r')
    try {
      const cases: Array<[string, unknown, string]> = [
        ['a string', 'not an fd', 'ERR_INVALID_ARG_TYPE'],
        ['{}', {}, 'ERR_INVALID_ARG_TYPE'],
        ['null', null, 'ERR_INVALID_ARG_TYPE'],
        ['{ fd: "3" }', { fd: '3' }, 'ERR_INVALID_ARG_TYPE'],
        ['a closed FileHandle', closedHandle, 'ERR_INVALID_ARG_VALUE'],
        ['a net.Server that is not listening', idleServer, 'ERR_INVALID_ARG_VALUE'],
        ['a net.Socket that is not connected', unconnected, 'ERR_INVALID_ARG_VALUE'],
        ['a dgram.Socket that is not bound', unbound, 'ERR_INVALID_ARG_VALUE'],
        ['a closed dgram.Socket', closedDgram, 'ERR_INVALID_ARG_VALUE'],
      ]
      for (const [what, value, code] of cases) {
        // A rejected promise, never a synchronous throw; a valid fd before it does not go alone.
        await t.throwsAsync(() => a.send('x', [fd, value as FdLike]), { instanceOf: TypeError, code }, what)
      }
      await t.throwsAsync(() => a.send('x', 'not an array' as unknown as FdLike[]), {
        instanceOf: TypeError,
        code: 'ERR_INVALID_ARG_TYPE',
      })
      // Nothing went out: the next message is the one sent now.
      await a.send('after')
      const { data, fds } = await b.receive()
      t.is(data.toString(), 'after')
      t.deepEqual(fds, [])
    } finally {
      fs.closeSync(fd)
      unbound.close()
      a.close()
      b.close()
    }
  })
})
