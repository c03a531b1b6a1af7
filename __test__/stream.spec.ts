/**
 * FdStream: the Duplex face over a connected Unix stream socket. Bytes and
 * fds in order across chunk boundaries, backpressure both ways, half-close
 * both ways, the fd queue's limit and its closing on destroy, errors.
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import {
  closeFds,
  createConnection,
  createServer,
  FdStream,
  recvFds,
  sendFds,
  socketPair,
  type FdStreamServer,
} from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'

const linux = process.platform === 'linux'
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-stream-'))
let names = 0
const sockPath = (): string => path.join(tmp, `s${process.pid}-${names++}.sock`)

/** Two FdStreams over a socketpair. */
function streamPair(
  a?: ConstructorParameters<typeof FdStream>[0],
  b?: ConstructorParameters<typeof FdStream>[0],
): [FdStream, FdStream] {
  const [x, y] = socketPair('stream')
  return [FdStream.from(x, a), FdStream.from(y, b)]
}

/** Resolves once `stream` has emitted 'close'. */
async function closed(stream: FdStream): Promise<void> {
  // Not events.once, which rejects on 'error': the tests that expect one check it themselves.
  if (!stream.closed) await new Promise((resolve) => stream.once('close', resolve))
}

/**
 * Reads `stream` to its end; returns every byte. Through 'data' events, not
 * for await, which destroys a Duplex (its writable side too) once it ends.
 */
async function readAll(stream: FdStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  stream.on('data', (chunk: Buffer) => chunks.push(chunk))
  await ended(stream)
  return Buffer.concat(chunks)
}

/** Resolves once `stream` has emitted 'end' (reading whatever is left). */
async function ended(stream: FdStream): Promise<void> {
  if (stream.readableEnded) return
  const end = once(stream, 'end')
  stream.resume()
  await end
}

/** Resolves with `n` bytes read from `stream` (in 'readable' mode). */
function readExactly(stream: FdStream, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const data = stream.read(n) as Buffer | null
      if (data === null) return
      stream.off('readable', attempt)
      stream.off('error', reject)
      resolve(data)
    }
    stream.on('readable', attempt)
    stream.once('error', reject)
    attempt()
  })
}

test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

test.serial(
  'bytes and fds arrive in order across chunk boundaries: each fd is queued by the time its byte is read',
  async (t) => {
    await withFdAudit(t, async () => {
      const [writer, reader] = streamPair()
      // Messages of [u32 length][u32 index][payload], each written with the fd
      // of a file that names its index; sizes cross the 64 KiB read chunks.
      const sizes = [1, 7, 65536, 3, 200_000, 12, 70_000, 1, 131_072, 5, 9, 300_000, 2]
      const files = sizes.map((_, i) => openTempFile(tmp, `file ${i}`))
      const writes = (async () => {
        for (let i = 0; i < sizes.length; i++) {
          const msg = Buffer.alloc(8 + sizes[i]!, i & 0xff)
          msg.writeUInt32LE(sizes[i]!, 0)
          msg.writeUInt32LE(i, 4)
          // Every other message: two writes, the fd with the first.
          if (i % 2 === 0) {
            if (!writer.write({ data: msg, fds: [files[i]!] })) await once(writer, 'drain')
          } else {
            writer.write({ data: msg.subarray(0, 3), fds: [files[i]!] })
            if (!writer.write(msg.subarray(3))) await once(writer, 'drain')
          }
        }
        writer.end()
      })()
      const seen: string[] = []
      for (let i = 0; i < sizes.length; i++) {
        const header = await readExactly(reader, 8)
        const [fd] = reader.takeFds(1)
        t.not(fd, undefined, `message ${i}: its fd is queued once its first bytes are read`)
        seen.push(readText(fd!, 0, 64))
        closeFds([fd!])
        const len = header.readUInt32LE(0)
        t.is(header.readUInt32LE(4), i)
        const body = await readExactly(reader, len)
        t.true(
          body.every((b) => b === (i & 0xff)),
          `message ${i}: payload intact`,
        )
      }
      await writes
      t.deepEqual(
        seen,
        sizes.map((_, i) => `file ${i}`),
      )
      t.is(reader.queuedFds, 0)
      await ended(reader)
      writer.resume()
      closeFds(files)
      await Promise.all([closed(writer), closed(reader)])
    })
  },
)

test.serial(
  'a slow reader stops the reads (the kernel buffer fills), and the fast writer sees write() return false, then drain',
  async (t) => {
    await withFdAudit(t, async () => {
      const [writer, reader] = streamPair(undefined, { readableHighWaterMark: 16 * 1024 })
      reader.pause()
      const chunk = Buffer.alloc(64 * 1024, 7)
      let written = 0
      // Write until the kernel pushes back: write() says false and no drain comes.
      for (let stalled = false; !stalled;) {
        written += chunk.length
        if (!writer.write(chunk)) {
          stalled = await Promise.race([
            once(writer, 'drain').then(() => false),
            new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 200)),
          ])
        }
      }
      t.true(written < 64 * 1024 * 1024, 'the writer was stopped')
      const drained = once(writer, 'drain')
      let drainedEarly = false
      void drained.then(() => (drainedEarly = true))
      await new Promise((resolve) => setTimeout(resolve, 300))
      t.false(drainedEarly, 'no drain while the reader reads nothing')
      t.true(writer.writableLength > 0, 'the writer holds what the kernel would not take')
      // The reader read at most its buffer and one batch of reads, not the whole flood.
      t.true(reader.readableLength <= 16 * 1024 + 4 * 64 * 1024, `reader buffered ${reader.readableLength} bytes`)
      // Keep writing after drain until 8 MiB went, while the reader consumes slowly.
      const total = 8 * 1024 * 1024
      const producing = (async () => {
        await drained
        while (written < total) {
          written += chunk.length
          if (!writer.write(chunk)) await once(writer, 'drain')
        }
        writer.end()
      })()
      let received = 0
      let maxBuffered = 0
      reader.on('data', (data: Buffer) => {
        received += data.length
        maxBuffered = Math.max(maxBuffered, reader.readableLength)
      })
      writer.resume()
      await Promise.all([producing, ended(reader)])
      t.is(received, written)
      t.true(maxBuffered <= 16 * 1024 + 4 * 64 * 1024)
      await Promise.all([closed(writer), closed(reader)])
    })
  },
)

test.serial('end() half-closes: the peer reads the end and, with allowHalfOpen, can still write back', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = streamPair(undefined, { allowHalfOpen: true })
    a.end('last words')
    t.is((await readAll(b)).toString(), 'last words')
    t.false(b.writableEnded, 'b stays writable after the peer ended')
    const file = openTempFile(tmp, 'after the end')
    b.end({ data: 'reply', fds: [file] })
    closeFds([file])
    const reply = await readExactly(a, 5)
    t.is(reply.toString(), 'reply')
    const [fd] = a.takeFds()
    t.is(readText(fd!), 'after the end')
    closeFds([fd!])
    a.resume()
    await Promise.all([closed(a), closed(b)])
  })
})

test.serial(
  'without allowHalfOpen the stream ends its side when the peer ends (a raw peer sees the end)',
  async (t) => {
    await withFdAudit(t, async () => {
      const [x, y] = socketPair('stream')
      const stream = FdStream.from(x)
      sendFds(y, 'hello')
      // shutdown through a second FdStream would do too; the raw peer ends by shutdown only on close here.
      const peer = FdStream.from(y, { allowHalfOpen: true })
      peer.end()
      t.is((await readAll(stream)).toString(), 'hello')
      // The stream ended its own side in turn: the peer reads the end.
      t.is((await readAll(peer)).length, 0)
      await Promise.all([closed(stream), closed(peer)])
    })
  },
)

test.serial(
  'end() reaches a raw recvmsg peer as a 0-byte read while the socket stays open for its reply',
  async (t) => {
    await withFdAudit(t, async () => {
      const [x, y] = socketPair('stream')
      const stream = FdStream.from(x, { allowHalfOpen: true })
      stream.end('bye')
      await once(stream, 'finish')
      t.is(recvFds(y).data.toString(), 'bye')
      t.is(recvFds(y).data.length, 0, 'end of stream')
      sendFds(y, 'still here')
      t.is((await readExactly(stream, 10)).toString(), 'still here')
      closeFds([y])
      stream.resume()
      await closed(stream)
    })
  },
)

test.serial(
  'fds nobody took are closed on destroy; a write that waited holds duplicates, so the sender may close its fds at once',
  async (t) => {
    await withFdAudit(t, async () => {
      const [a, b] = streamPair()
      b.pause()
      // Fill the socket so that the next writes wait.
      while (a.write(Buffer.alloc(64 * 1024))) {
        /* until the kernel pushes back */
      }
      for (let i = 0; i < 20; i++) {
        const file = openTempFile(tmp, `queued ${i}`)
        a.write({ data: 'x', fds: [file, file] })
        closeFds([file]) // the stream holds its own duplicate
      }
      b.resume()
      let bytes = 0
      b.on('data', (d: Buffer) => (bytes += d.length))
      // Wait until every fd is queued, take a few, leave the rest.
      while (b.queuedFds < 40) await new Promise((resolve) => setTimeout(resolve, 10))
      const taken = b.takeFds(3)
      t.is(taken.length, 3)
      t.is(readText(taken[0]!), 'queued 0')
      closeFds(taken)
      t.true(bytes > 0)
      a.destroy()
      b.destroy()
      await Promise.all([closed(a), closed(b)])
      t.is(b.queuedFds, 0)
    })
  },
)

test.serial(
  'destroying a stream whose writes wait closes the duplicates fdpass held for them; writes after end or destroy hold none',
  async (t) => {
    await withFdAudit(t, async () => {
      const [a, b] = streamPair()
      b.pause()
      while (a.write(Buffer.alloc(64 * 1024))) {
        /* until the writable side buffers */
      }
      const file = openTempFile(tmp, 'never sent')
      const errors: Array<string | undefined> = []
      for (let i = 0; i < 5; i++)
        a.write({ data: 'x', fds: [file] }, (err) => errors.push((err as NodeJS.ErrnoException | null)?.code))
      a.destroy()
      await closed(a)
      t.true(
        errors.every((code) => code === 'ERR_STREAM_DESTROYED'),
        errors.join(),
      )
      a.on('error', () => undefined)
      a.write({ data: 'late', fds: [file] })
      const [c, d] = streamPair()
      c.on('error', () => undefined)
      c.end()
      c.write({ data: 'after end', fds: [file] })
      closeFds([file])
      b.destroy()
      d.destroy()
      c.destroy()
      await Promise.all([closed(b), closed(c), closed(d)])
    })
  },
)

test.serial(
  'a peer sending more fds than maxQueuedFds destroys the stream with ERR_FDPASS_TOO_MANY_QUEUED_FDS and closes them all',
  async (t) => {
    await withFdAudit(t, async () => {
      const [x, y] = socketPair('stream')
      const stream = FdStream.from(x, { maxQueuedFds: 4 })
      const file = openTempFile(tmp, 'flood')
      for (let i = 0; i < 3; i++) sendFds(y, 'ab', [file, file])
      stream.resume()
      const [err] = (await once(stream, 'error')) as [NodeJS.ErrnoException]
      t.is(err.code, 'ERR_FDPASS_TOO_MANY_QUEUED_FDS')
      t.regex(err.message, /takeFds\(\)/)
      await closed(stream)
      closeFds([file, y])
    })
  },
)

test.serial('maxQueuedFds: 0 refuses any fd; taking fds as they come keeps a long stream of fds going', async (t) => {
  await withFdAudit(t, async () => {
    const [x, y] = socketPair('stream')
    const refusing = FdStream.from(x, { maxQueuedFds: 0 })
    sendFds(y, 'a', [y])
    refusing.resume()
    t.is(((await once(refusing, 'error')) as [NodeJS.ErrnoException])[0].code, 'ERR_FDPASS_TOO_MANY_QUEUED_FDS')
    closeFds([y])
    const [a, b] = streamPair(undefined, { maxQueuedFds: 2 })
    const file = openTempFile(tmp, 'many')
    let got = 0
    b.on('data', () => {
      for (const fd of b.takeFds()) {
        got++
        closeFds([fd])
      }
    })
    for (let i = 0; i < 500; i++) if (!a.write({ data: 'z', fds: [file] })) await once(a, 'drain')
    a.end()
    a.resume()
    await ended(b)
    t.is(got, 500)
    closeFds([file])
    await Promise.all([closed(a), closed(b), closed(refusing)])
  })
})

test.serial(
  'errors carry codes: ENOENT and ECONNREFUSED on connect, EPIPE on write, bad input before any syscall',
  async (t) => {
    await withFdAudit(t, async () => {
      const missing = createConnection(path.join(tmp, 'nobody-here.sock'))
      const [enoent] = (await once(missing, 'error')) as [NodeJS.ErrnoException & { address: string }]
      t.is(enoent.code, 'ENOENT')
      t.is(enoent.syscall, 'connect')
      t.regex(enoent.address, /nobody-here/)
      await closed(missing)

      // A socket file nobody listens on (bound by a process that is gone).
      const stale = sockPath()
      spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale])
      const refused = createConnection(stale)
      t.is(((await once(refused, 'error')) as [NodeJS.ErrnoException])[0].code, 'ECONNREFUSED')
      await closed(refused)
      fs.rmSync(stale)

      const [a, b] = streamPair()
      b.destroy()
      await closed(b)
      a.write('into the void')
      const [epipe] = (await once(a, 'error')) as [NodeJS.ErrnoException]
      t.true(epipe.code === 'EPIPE' || epipe.code === 'ECONNRESET', String(epipe.code))
      await closed(a)

      const [c, d] = streamPair()
      const file = openTempFile(tmp, 'x')
      t.throws(() => c.write({ data: '', fds: [file] }), { code: 'ERR_EMPTY_DATA' })
      t.throws(() => c.write({ data: 'x', fds: [-1] }), { code: 'ERR_OUT_OF_RANGE' })
      t.throws(() => c.write({ data: 'x', fds: 'nope' as unknown as number[] }), { code: 'ERR_INVALID_ARG_TYPE' })
      t.throws(() => c.write({ data: 'x', fds: new Array(254).fill(file) }), { code: 'ERR_TOO_MANY_FDS' })
      t.throws(() => c.takeFds(-1), { code: 'ERR_OUT_OF_RANGE' })
      t.throws(() => new FdStream({ maxQueuedFds: 2 ** 21 }), { code: 'ERR_OUT_OF_RANGE' })
      t.throws(() => createConnection(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
      const [dx, dy] = socketPair('dgram')
      t.throws(() => FdStream.from(dx), { code: 'ERR_INVALID_ARG_VALUE' })
      closeFds([dx, dy, file])
      c.destroy()
      d.destroy()
      await Promise.all([closed(c), closed(d)])
    })
  },
)

/** Listens on `address` and resolves once listening. */
async function listening(server: FdStreamServer, address: string): Promise<void> {
  server.listen(address)
  await once(server, 'listening')
}

test.serial(
  'a server yields FdStreams: connect, fds both ways, address(), close after its connections close',
  async (t) => {
    await withFdAudit(t, async () => {
      const p = sockPath()
      const server = createServer({ allowHalfOpen: true }, (stream) => {
        stream.on('data', (data: Buffer) => {
          const fds = stream.takeFds()
          // Echo the bytes back with the fds it received.
          stream.write({ data, fds }, () => closeFds(fds))
        })
        stream.on('end', () => stream.end())
      })
      await listening(server, p)
      t.is(server.address(), p)
      const client = createConnection(p)
      await once(client, 'connect')
      t.false(client.pending)
      const file = openTempFile(tmp, 'echoed')
      client.write({ data: 'ping', fds: [file] })
      closeFds([file])
      t.is((await readExactly(client, 4)).toString(), 'ping')
      const [fd] = client.takeFds()
      t.is(readText(fd!), 'echoed')
      closeFds([fd!])
      const serverClosed = once(server, 'close')
      server.close()
      t.false(fs.existsSync(p), 'the socket file is removed')
      client.end()
      client.resume()
      await closed(client)
      await serverClosed
    })
  },
)

test.serial(
  'allowPeer: a refused peer is closed before anything is read and never emitted; a throwing check refuses',
  async (t) => {
    await withFdAudit(t, async () => {
      const uid = process.getuid?.() ?? 0
      t.throws(() => createServer().listen({ path: sockPath(), allowPeer: 'yes' as never }), {
        code: 'ERR_INVALID_ARG_TYPE',
        instanceOf: TypeError,
      })
      for (const [check, admitted] of [
        [(c: { uid: number; pid?: number }) => c.uid === uid && c.pid === process.pid, true],
        [(c: { uid: number }) => c.uid === uid + 1, false],
        [
          () => {
            throw new Error('check failed')
          },
          false,
        ],
        [() => 1 as unknown as boolean, false],
      ] as const) {
        const p = sockPath()
        const seen: string[] = []
        const server = createServer((stream) => {
          seen.push('connection')
          stream.end('welcome')
          stream.resume()
        })
        server.listen({ path: p, allowPeer: check })
        await once(server, 'listening')
        const client = createConnection(p)
        const file = openTempFile(tmp, 'not for a refused peer')
        client.write({ data: 'hello', fds: [file] })
        closeFds([file])
        // A refused peer sees its connection closed: the end of the stream,
        // or ECONNRESET since the bytes it sent were never read.
        const got = await readAll(client).then(
          (bytes) => bytes.toString(),
          (err: NodeJS.ErrnoException) => err.code,
        )
        await closed(client)
        if (admitted) t.is(got, 'welcome', `${check}`)
        else t.true(got === '' || got === 'ECONNRESET', `${check}: got ${got}`)
        t.deepEqual(seen, admitted ? ['connection'] : [])
        const done = once(server, 'close')
        server.close()
        await done
      }
    })
  },
)

test.serial('abstract names on Linux, written with @ or \\0', async (t) => {
  if (!linux) {
    t.throws(() => createConnection('@fdpass-test'), { code: 'ERR_FDPASS_UNSUPPORTED' })
    return
  }
  await withFdAudit(t, async () => {
    const name = `fdpass-stream-${process.pid}-${Date.now()}`
    const server = createServer((stream) => stream.end('abstract').resume())
    await listening(server, `@${name}`)
    for (const address of [`@${name}`, `\0${name}`]) {
      const client = createConnection(address)
      t.is((await readAll(client)).toString(), 'abstract')
      await closed(client)
    }
    const done = once(server, 'close')
    server.close()
    await done
  })
})

test.serial(
  'ref/unref/setNoDelay/setKeepAlive are chainable; writes made before connect go out after it',
  async (t) => {
    await withFdAudit(t, async () => {
      const p = sockPath()
      const server = createServer((stream) => {
        stream.pipe(stream)
      })
      await listening(server, p)
      const client = new FdStream()
      t.is(client.setNoDelay(true).setKeepAlive(true).unref().ref(), client)
      t.true(client.pending)
      client.write('early ')
      client.connect(p)
      t.true(client.connecting)
      client.end('bird')
      t.is((await readAll(client)).toString(), 'early bird')
      await closed(client)
      const done = once(server, 'close')
      server.close()
      await done
    })
  },
)

test.serial(
  'a worker terminated while its FdStream holds queued fds and waiting writes leaves no fd behind',
  async (t) => {
    await withFdAudit(t, async () => {
      const root = path.join(__dirname, '..')
      const worker = new Worker(
        `
      const { parentPort } = require('node:worker_threads')
      const fs = require('node:fs')
      const { FdStream, socketPair, sendFds, closeFds } = require(${JSON.stringify(root)})
      const devNull = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync('/proc/self/fd/' + fd) === '/dev/null'
        } catch {
          return false
        }
      }).length
      const base = devNull()
      const file = fs.openSync('/dev/null', 'r')
      // A stream not connected yet: its writes wait, and fdpass holds duplicates of their fds.
      const writer = new FdStream()
      for (let i = 0; i < 5; i++) writer.write({ data: 'z', fds: [file] })
      // A reader with fds in its queue that nobody takes.
      const [x, y] = socketPair('stream')
      const reader = FdStream.from(x)
      for (let i = 0; i < 10; i++) sendFds(y, 'ab', [file, file])
      closeFds([file, y])
      reader.pause()
      reader.on('readable', () => {
        // 20 fds queued and 5 duplicates held for the waiting writes ('file' is closed).
        if (reader.queuedFds === 20) parentPort.postMessage(devNull() - base)
      })
      `,
        { eval: true },
      )
      const [held] = (await once(worker, 'message')) as [number]
      t.is(held, 25, 'the worker holds 20 queued fds and 5 duplicates')
      await worker.terminate()
    })
  },
)
