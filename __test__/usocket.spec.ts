/**
 * fdpass/usocket: the parts of usocket's USocket and UServer that code
 * written for usocket (dbus-next) uses.
 */
import test from 'ava'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, socketPair } from 'fdpass'
import { UServer, USocket, type USocketReadResult } from 'fdpass/usocket'

import { withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-usocket-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** Resolves with the first non-null result of `attempt`, tried on every 'readable'. */
function whenReadable<T>(socket: USocket, attempt: () => T | null): Promise<T> {
  return new Promise((resolve) => {
    const tryIt = (): void => {
      const result = attempt()
      if (result === null) return
      socket.off('readable', tryIt)
      resolve(result)
    }
    socket.on('readable', tryIt)
    tryIt()
  })
}

async function closed(socket: USocket): Promise<void> {
  if (!socket.closed) await once(socket, 'close')
}

test.serial(
  "read(n, null) returns { data, fds } with every queued fd; read(n, k) waits for k fds; 'connected' comes once for code listening to both events",
  async (t) => {
    await withFdAudit(t, async () => {
      const p = path.join(tmp, 'u.sock')
      const server = new UServer()
      const accepted = once(server, 'connection') as Promise<[USocket]>
      await new Promise<void>((resolve) => server.listen(p, 8, resolve))
      let connected = 0
      let connect = 0
      const client = new USocket({ path: p })
      client.on('connected', () => connected++)
      client.on('connect', () => connect++)
      await once(client, 'connected')
      const [peer] = await accepted
      t.true(peer instanceof USocket)
      const a = openTempFile(tmp, 'first')
      const b = openTempFile(tmp, 'second')
      peer.write({ data: Buffer.from('header--'), fds: [a] })
      peer.write({ data: Buffer.from('body'), fds: [b] })
      closeFds([a, b])
      t.is(await whenReadable(client, () => client.read(8) as Buffer | null).then(String), 'header--')
      // Waits until both fds are queued, as read(n, count) asks.
      const message = await whenReadable(client, () => client.read(4, 2) as USocketReadResult | null)
      t.is(String(message.data), 'body')
      t.deepEqual(
        message.fds.map((fd) => readText(fd)),
        ['first', 'second'],
      )
      closeFds(message.fds)
      peer.write({ data: Buffer.from('xy') })
      const none = await whenReadable(client, () => client.read(2, null) as USocketReadResult | null)
      t.deepEqual(none.fds, [])
      t.is(client.read(100, null), null, 'not enough bytes: null, nothing taken')
      t.is(connected, 1)
      t.is(connect, 0, "'connect' is not emitted to code that listens to 'connected'")
      client.end()
      peer.end()
      client.resume()
      peer.resume()
      await Promise.all([closed(client), closed(peer)])
      const done = once(server, 'close')
      server.close()
      await done
    })
  },
)

test.serial(
  "code written for net gets 'connect'; a USocket adopts an fd; write callbacks of { data, fds, callback } run",
  async (t) => {
    await withFdAudit(t, async () => {
      const [x, y] = socketPair('stream')
      const adopted = new USocket({ fd: x })
      const other = new USocket({ fd: y })
      const chunk = { data: Buffer.from('z'), fds: [0], callback: () => undefined }
      const wrote = new Promise<unknown>((resolve) => (chunk.callback = resolve as () => undefined))
      adopted.write(chunk)
      t.is(await wrote, chunk)
      const got = await whenReadable(other, () => other.read(1, 1) as USocketReadResult | null)
      t.is(got.fds.length, 1)
      closeFds(got.fds)
      adopted.destroy()
      other.destroy()
      await Promise.all([closed(adopted), closed(other)])

      const p = path.join(tmp, 'n.sock')
      const server = new UServer()
      server.on('connection', (s: USocket) => s.end().resume())
      await new Promise<void>((resolve) => server.listen({ path: p }, resolve))
      const client = new USocket()
      client.connect(p)
      await once(client, 'connect')
      client.resume()
      await closed(client)
      const done = once(server, 'close')
      server.close()
      await done
    })
  },
)
