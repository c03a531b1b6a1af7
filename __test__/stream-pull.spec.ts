/**
 * FdStream's pulled reads: each recvmsg goes straight into a Buffer the
 * stream hands over. A read that fills its Buffer exactly, chunks that stay
 * intact while later reads arrive (no Buffer is read into twice), small reads
 * that do not hold a 64 KiB Buffer, the end right after a read with fds, and
 * a read error that destroys the stream with the socket's code.
 */
import test from 'ava'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import { closeFds, FdStream, sendFds, socketPair, type FdpassError } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'

const linux = process.platform === 'linux'
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-stream-pull-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** The bytes of chunk `k` of a patterned stream: each chunk its own pattern. */
function patterned(k: number, length: number): Buffer {
  const data = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) data[i] = (i * 7 + k * 31) & 0xff
  return data
}

/** Resolves once `stream` has emitted 'close'. */
async function closed(stream: FdStream): Promise<void> {
  if (!stream.closed) await new Promise((resolve) => stream.once('close', resolve))
}

test.serial(
  'a read that fills its Buffer exactly, then small ones: every chunk handed over stays intact, and small reads hold no 64 KiB',
  async (t) => {
    // Node's pool of small Buffers is 64 KiB from Node 24 on: without it,
    // each small Buffer has an ArrayBuffer of its own size, and one that
    // still held its 64 KiB read Buffer shows.
    const poolSize = Buffer.poolSize
    Buffer.poolSize = 0
    t.teardown(() => (Buffer.poolSize = poolSize))
    await withFdAudit(t, async () => {
      const [raw, fd] = socketPair('stream')
      const file = openTempFile(tmp, 'exact')
      // A small write with an fd (a read ends with the fds it brings), then
      // more than 64 KiB without: a read of exactly the read Buffer's size,
      // then one of the rest, glued to the small writes that follow.
      const first = patterned(0, 5)
      const big = patterned(1, 64 * 1024 + 100)
      const smalls = [patterned(2, 10), patterned(3, 3), patterned(4, 100)]
      sendFds(raw, first, [file])
      closeFds([file])
      sendFds(raw, big)
      for (const small of smalls) sendFds(raw, small)
      closeFds([raw])
      const stream = FdStream.from(fd)
      const chunks: Buffer[] = []
      const fds: number[] = []
      // Kept, not consumed: a Buffer read into again would show here.
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        fds.push(...stream.takeFds())
      })
      await once(stream, 'end')
      t.true(Buffer.concat(chunks).equals(Buffer.concat([first, big, ...smalls])), 'every byte in order')
      // Linux's socket buffer holds it all at once; the read stops at the fd.
      if (linux)
        t.deepEqual(
          chunks.map((c) => c.length),
          [5, 64 * 1024, 100 + 10 + 3 + 100],
        )
      t.is(fds.length, 1)
      t.is(readText(fds[0]!, 0, 64), 'exact')
      closeFds(fds)
      for (const chunk of chunks.filter((c) => c.length < 16 * 1024)) {
        t.true(
          chunk.buffer.byteLength < 64 * 1024,
          `a ${chunk.length}-byte read holds ${chunk.buffer.byteLength} bytes`,
        )
      }
      stream.destroy()
      await closed(stream)
    })
  },
)

test.serial('many reads buffered by a paused reader are all intact once it reads them', async (t) => {
  await withFdAudit(t, async () => {
    const [w, fd] = socketPair('stream')
    const writer = FdStream.from(w)
    const stream = FdStream.from(fd, { readableHighWaterMark: 1024 * 1024 })
    const sent: Buffer[] = []
    // Paused ('readable' mode): the reads pile up in the stream's buffer.
    for (let k = 0; k < 12; k++) {
      const chunk = patterned(k, 40_000 + k * 1000)
      sent.push(chunk)
      writer.write(chunk)
    }
    writer.end()
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (stream.readableLength < Buffer.concat(sent).length) return
        stream.off('readable', check)
        resolve()
      }
      stream.on('readable', check)
    })
    const all = stream.read() as Buffer
    t.true(all.equals(Buffer.concat(sent)))
    stream.destroy()
    writer.destroy()
    await Promise.all([closed(stream), closed(writer)])
  })
})

test.serial('the end right after a read with fds: the bytes, their fd, then the end; nothing leaks', async (t) => {
  await withFdAudit(t, async () => {
    const [raw, fd] = socketPair('stream')
    const file = openTempFile(tmp, 'last one')
    sendFds(raw, Buffer.from('last'), [file])
    closeFds([file, raw])
    const stream = FdStream.from(fd)
    let text = ''
    let fds: number[] = []
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      fds = fds.concat(stream.takeFds())
    })
    await once(stream, 'end')
    t.is(text, 'last')
    t.is(fds.length, 1)
    t.is(readText(fds[0]!, 0, 64), 'last one')
    closeFds(fds)
    await closed(stream)
  })
})

test.serial(
  'a peer that closes with our bytes unread: its bytes arrive, then the read error destroys the stream',
  async (t) => {
    await withFdAudit(t, async () => {
      const [raw, fd] = socketPair('stream')
      const stream = FdStream.from(fd)
      stream.write('never read')
      await new Promise<void>((resolve) => stream.write('', () => resolve()))
      sendFds(raw, Buffer.from('hi'))
      closeFds([raw])
      let text = ''
      stream.on('data', (chunk: Buffer) => (text += chunk.toString()))
      const outcome = await new Promise<FdpassError | 'end'>((resolve) => {
        stream.once('error', (err) => resolve(err as FdpassError))
        stream.once('end', () => resolve('end'))
      })
      t.is(text, 'hi')
      if (linux) {
        // Linux reports ECONNRESET once the bytes before it are read.
        t.not(outcome, 'end')
        t.is((outcome as FdpassError).code, 'ECONNRESET')
        t.is((outcome as FdpassError).syscall, 'recvmsg')
      }
      stream.destroy()
      await closed(stream)
    })
  },
)

test.serial(
  'idle streams hold no read Buffer: a hundred streams that each read a few bytes hold no 64 KiB each',
  async (t) => {
    await withFdAudit(t, async () => {
      const count = 100
      const pairs = Array.from({ length: count }, () => socketPair('stream'))
      const before = process.memoryUsage().arrayBuffers
      const streams = pairs.map(([, fd]) => FdStream.from(fd))
      await Promise.all(
        streams.map(async (stream, i) => {
          const got = once(stream, 'data')
          sendFds(pairs[i]![0], Buffer.from(`hello ${i}`))
          t.is(String((await got)[0]), `hello ${i}`)
        }),
      )
      // Each waits for more now. A Buffer of 64 KiB per stream would be 6.4 MiB.
      const grown = process.memoryUsage().arrayBuffers - before
      t.true(grown < (count * 64 * 1024) / 4, `${count} idle streams hold ${grown} bytes of ArrayBuffers`)
      for (const stream of streams) stream.destroy()
      closeFds(pairs.map(([raw]) => raw))
      await Promise.all(streams.map(closed))
    })
  },
)

test.serial('workers terminated at random points of a stream of fds leave no fd behind', async (t) => {
  const root = path.join(__dirname, '..')
  await withFdAudit(t, async () => {
    // The fd sent is this thread's: every fd the worker gets is fdpass's own
    // (received and queued, in flight, or duplicated for a waiting write),
    // never one its code holds, so whatever is left after a termination is
    // fdpass's leak. (An fd the worker's code had taken would be its own to
    // close, which a termination can stop at any point.)
    const file = fs.openSync('/dev/null', 'r')
    for (let round = 0; round < 12; round++) {
      // The worker streams 3000 chunks with an fd each to itself; its reader
      // reads the bytes and lets the fds wait in the queue.
      const worker = new Worker(
        `
        const { parentPort, workerData } = require('node:worker_threads')
        const { FdStream, socketPair } = require(${JSON.stringify(root)})
        const [x, y] = socketPair('stream')
        const reader = FdStream.from(x, { maxQueuedFds: 4000 })
        const writer = FdStream.from(y)
        let told = false
        reader.on('data', () => {
          if (!told) parentPort.postMessage('reading')
          told = true
        })
        const chunk = Buffer.alloc(${3000 + 997})
        ;(async () => {
          for (let i = 0; i < 3000; i++)
            if (!writer.write({ data: chunk, fds: [workerData.file] })) await new Promise((r) => writer.once('drain', r))
        })()
        `,
        { eval: true, workerData: { file } },
      )
      await once(worker, 'message')
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 30))
      await worker.terminate()
    }
    closeFds([file])
    t.pass()
  })
})
