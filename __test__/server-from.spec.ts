/**
 * `FdServer.from(fd)`: adopting a listening socket another program made (a
 * Node `net.Server`, a CPython listener handed over as a service manager
 * would), accepting and passing fds through it; refusing, with the fd left
 * open, what is not a listening Unix socket. And `whenClosed()`, the close
 * completion of sockets and servers.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, connect, fdKind, FdServer, FdSocket, listen, socketPair, type SocketType } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { codeOf, timeout } from './helpers/outcomes.js'

const linux = process.platform === 'linux'
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-server-from-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** A temporary file holding `text`, opened for reading: its fd. */
function fileWith(text: string): number {
  const p = path.join(tmp, `file-${Math.random().toString(36).slice(2)}`)
  fs.writeFileSync(p, text)
  const fd = fs.openSync(p, 'r')
  fs.unlinkSync(p)
  return fd
}

/** The contents of a file fd, read from the start. */
function read(fd: number): string {
  const buf = Buffer.alloc(100)
  return buf.subarray(0, fs.readSync(fd, buf, 0, 100, 0)).toString()
}

/** Whether `fd` still names the socket whose inode was `ino`. */
function stillOpen(fd: number, ino: number): boolean {
  try {
    return fs.fstatSync(fd).ino === ino
  } catch {
    return false
  }
}

/** Connects, accepts, and passes a file each way through the adopted server. */
async function passThrough(t: import('ava').ExecutionContext, server: FdServer, socketPath: string, type: SocketType) {
  const client = await connect(socketPath, { type })
  const conn = await server.accept(timeout())
  const there = fileWith('client to server')
  await client.send('up', [there])
  const up = await conn.receive(timeout())
  t.is(up.data.toString(), 'up')
  t.is(read(up.fds[0]!), 'client to server')
  const back = fileWith('server to client')
  await conn.send('down', [back])
  const down = await client.receive(timeout())
  t.is(read(down.fds[0]!), 'server to client')
  closeFds([there, back, ...up.fds, ...down.fds])
  client.close()
  conn.close()
}

test.serial('FdServer.from adopts the listener of a Node net.Server handed over through a socket', async (t) => {
  await withFdAudit(t, async () => {
    const socketPath = path.join(tmp, 'node.sock')
    const linkPath = path.join(tmp, 'node-link.sock')
    const nodeServer = net.createServer()
    await new Promise<void>((resolve) => nodeServer.listen(socketPath, resolve))
    const [a, b] = FdSocket.pair()
    await a.send('listener', [nodeServer])
    const { fds } = await b.receive(timeout())
    a.close()
    b.close()
    // libuv removes the path it bound when Node's copy closes: keep another name for the socket.
    fs.linkSync(socketPath, linkPath)
    await new Promise((resolve) => nodeServer.close(resolve))
    const server = FdServer.from(fds[0]!)
    t.is(server.fd, fds[0])
    t.is(server.path, '')
    await passThrough(t, server, linkPath, 'stream')
    await passThrough(t, server, linkPath, 'stream')
    const ino = fs.fstatSync(server.fd).ino
    const fd = server.fd
    await server.close()
    await server.whenClosed()
    t.false(stillOpen(fd, ino), 'close() closed the adopted fd')
    t.true(fs.existsSync(linkPath), 'a socket file the server did not create is left in place')
    t.is(await codeOf(server.accept()), 'ERR_SOCKET_CLOSED')
    fs.unlinkSync(linkPath)
  })
})

for (const type of (linux ? ['stream', 'seqpacket'] : ['stream']) as Array<'stream' | 'seqpacket'>) {
  test.serial(`FdServer.from adopts a blocking ${type} listener made by a Python process`, async (t) => {
    await withFdAudit(t, async () => {
      const socketPath = path.join(tmp, `py-${type}.sock`)
      const [mine, theirs] = socketPair()
      const child = spawn('python3', [path.join(__dirname, 'peers', 'py_listener.py'), socketPath, type], {
        stdio: ['ignore', 'pipe', 'inherit', theirs],
      })
      let out = ''
      child.stdout?.on('data', (c: Buffer) => (out += c))
      closeFds([theirs])
      const channel = FdSocket.from(mine, { framing: false })
      const { fds } = await channel.receive(timeout())
      t.is(fdKind(fds[0]!), 'socket')
      const server = FdServer.from(fds[0]!)
      // A blocking listener is accepted from one connection per readiness
      // event: several connections waiting at once are each accepted.
      const clients = await Promise.all([connect(socketPath, { type }), connect(socketPath, { type })])
      const accepted = await Promise.all([server.accept(timeout()), server.accept(timeout())])
      for (const conn of accepted) t.is(conn.type, type)
      for (const c of [...clients, ...accepted]) c.close()
      await passThrough(t, server, socketPath, type)
      await server.close()
      channel.close()
      await once(child, 'close')
      const result = JSON.parse(out) as { blocking: boolean; fd_audit_ok: boolean }
      t.true(result.blocking, 'the listener was blocking')
      t.true(result.fd_audit_ok, 'the Python process leaked nothing')
    })
  })
}

test.serial('FdServer.from refuses what is not a listening Unix socket, and leaves the fd open', async (t) => {
  await withFdAudit(t, async () => {
    const file = fileWith('not a socket')
    t.is(await codeOf((async () => FdServer.from(file))()), 'ENOTSOCK')
    t.is(fdKind(file), 'file', 'the refused fd is still open')
    const [d1, d2] = socketPair('dgram')
    const err = t.throws(() => FdServer.from(d1))
    t.is((err as NodeJS.ErrnoException).code, 'ERR_SOCKET_NOT_LISTENING')
    t.regex(err!.message, /datagram socket/)
    t.is(fdKind(d1), 'socket', 'the refused socket is still open')
    t.is(await codeOf((async () => FdServer.from(2 ** 30))()), 'EBADF')
    closeFds([file, d1, d2])
  })
})

test.serial('FdServer.from checks its arguments before any syscall', async (t) => {
  await withFdAudit(t, async () => {
    const file = fileWith('not a socket')
    const code = (fn: () => unknown) => (t.throws(fn) as NodeJS.ErrnoException).code
    t.is(
      code(() => FdServer.from('3' as unknown as number)),
      'ERR_INVALID_ARG_TYPE',
    )
    t.is(
      code(() => FdServer.from(-1)),
      'ERR_OUT_OF_RANGE',
    )
    // Each of these would be ENOTSOCK had the fd been looked at first.
    t.is(
      code(() => FdServer.from(file, { maxFds: 999 })),
      'ERR_OUT_OF_RANGE',
    )
    t.is(
      code(() => FdServer.from(file, { framing: 'yes' as unknown as boolean })),
      'ERR_INVALID_ARG_TYPE',
    )
    t.is(
      code(() => FdServer.from(file, { allowPeer: 1 as unknown as () => boolean })),
      'ERR_INVALID_ARG_TYPE',
    )
    t.is(
      code(() => FdServer.from(file, null as unknown as undefined)),
      'ERR_INVALID_ARG_TYPE',
    )
    t.is(fdKind(file), 'file')
    closeFds([file])
  })
})

const linuxTest = linux ? test.serial : test.serial.skip
linuxTest(
  `FdServer.from refuses a connected stream or seqpacket socket with ERR_SOCKET_NOT_LISTENING${linux ? '' : ' (skipped: only Linux shows whether a socket listens, in /proc/net/unix)'}`,
  async (t) => {
    await withFdAudit(t, async () => {
      for (const type of ['stream', 'seqpacket'] as const) {
        const [a, b] = socketPair(type)
        const err = t.throws(() => FdServer.from(a))
        t.is((err as NodeJS.ErrnoException).code, 'ERR_SOCKET_NOT_LISTENING', type)
        t.regex(err!.message, new RegExp(`${type} socket that does not listen`))
        t.is(fdKind(a), 'socket', 'the refused socket is still open')
        closeFds([a, b])
      }
    })
  },
)

test.serial('FdServer.from passes the options on to the accepted connections, and allowPeer runs', async (t) => {
  await withFdAudit(t, async () => {
    const socketPath = path.join(tmp, 'options.sock')
    const made = await listen(socketPath)
    // Handed to a second owner the way a restarting server hands it on.
    const [a, b] = FdSocket.pair()
    await a.send('listener', [made.fd])
    const { fds } = await b.receive(timeout())
    a.close()
    b.close()
    let checked = 0
    const server = FdServer.from(fds[0]!, {
      framing: false,
      maxFds: 1,
      allowPeer: (cred) => {
        checked++
        return cred.uid === process.getuid!()
      },
    })
    const client = await connect(socketPath, { framing: false })
    const conn = await server.accept(timeout())
    t.is(checked, 1)
    const f1 = fileWith('one')
    const f2 = fileWith('two')
    await client.send('two fds', [f1, f2])
    t.is(await codeOf(conn.receive(timeout())), 'ERR_FDS_TRUNCATED', 'maxFds: 1 applies to the accepted socket')
    closeFds([f1, f2])
    client.close()
    conn.close()
    await server.close()
    t.true(fs.existsSync(socketPath), 'the adopted server leaves the file to the server that made it')
    await made.close()
    t.false(fs.existsSync(socketPath))
  })
})

test.serial('whenClosed() of a socket resolves when close() or the end of the stream closes it', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair()
    const aClosed = a.whenClosed()
    t.is(a.whenClosed(), aClosed, 'one promise per socket')
    let settled = false
    void aClosed.then(() => (settled = true))
    await new Promise((resolve) => setImmediate(resolve))
    t.false(settled, 'pending while the socket is open')
    const pendingReceive = b.receive()
    a.close()
    await aClosed
    t.true(a.closed)
    // The peer's end of stream closes b without a call to close().
    t.is(await codeOf(pendingReceive), 'ERR_SOCKET_CLOSED')
    await b.whenClosed()
    t.true(b.closed)
    t.is(b.fd, -1)
    await a.whenClosed() // already closed: resolves at once
    b.close()
  })
})

test.serial('whenClosed() of a server resolves once close() has closed it and its unclaimed connections', async (t) => {
  await withFdAudit(t, async () => {
    const socketPath = path.join(tmp, 'when-closed.sock')
    const server = await listen(socketPath)
    const [first, second] = [await connect(socketPath), await connect(socketPath)]
    // One accept takes both waiting connections in one batch and hands out one.
    const taken = await server.accept(timeout())
    const closed = server.whenClosed()
    const done = server.close()
    await closed
    t.false(fs.existsSync(socketPath), 'the socket file is removed by then')
    // The connection accepted but not claimed was closed: its client sees the end.
    t.is(await codeOf(second.receive(timeout())), 'ERR_SOCKET_CLOSED')
    // The one handed out stays open.
    t.false(taken.closed)
    await taken.send('still open')
    t.is((await first.receive(timeout())).data.toString(), 'still open')
    await done
    for (const s of [first, second, taken]) s.close()
  })
})
