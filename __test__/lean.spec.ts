/**
 * The lean raw path (scratch buffer, plain napi functions): every size
 * boundary of its fast and fallback branches, worker threads (one scratch per
 * environment), and the AF_UNIX check under fd-number reuse.
 */
import test from 'ava'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import { closeFds, recvFds, sendFds, socketPair } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}

test.serial('payload sizes around the copy thresholds arrive intact', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('seqpacket')
    const f = fs.openSync(__filename, 'r')
    for (const n of [1, 2, 63, 64, 65, 200, 4096, 65536]) {
      const payload = bytes(n, n)
      t.is(sendFds(a, payload, [f]), n)
      const { data, fds } = recvFds(b)
      t.true(Buffer.isBuffer(data))
      t.is(data.length, n)
      t.true(data.equals(payload), `payload of ${n} bytes`)
      t.is(fds.length, 1)
      closeFds(fds)
    }
    // A string payload goes through the same path.
    sendFds(a, 'é', [f])
    const got = recvFds(b)
    t.is(got.data.toString(), 'é')
    closeFds([...got.fds, f, a, b])
  })
})

test.serial('received data does not change when the next message arrives', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('dgram')
    sendFds(a, 'first')
    const first = recvFds(b)
    sendFds(a, 'SECOND')
    const second = recvFds(b)
    t.is(first.data.toString(), 'first')
    t.is(second.data.toString(), 'SECOND')
    closeFds([a, b])
  })
})

test.serial('maxBytes above the scratch size takes the allocating path', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('seqpacket')
    const f = fs.openSync(__filename, 'r')
    const payload = bytes(100_000, 7)
    sendFds(a, payload, [f])
    const { data, fds } = recvFds(b, { maxBytes: 200_000 })
    t.true(data.equals(payload))
    t.is(fds.length, 1)
    // And a refused message on that path still closes its fds.
    sendFds(a, payload, [f])
    const err = t.throws(() => recvFds(b, { maxBytes: 70_000 }))
    t.is((err as NodeJS.ErrnoException).code, 'ERR_MESSAGE_TRUNCATED')
    closeFds([...fds, f, a, b])
  })
})

test.serial('253 fds through the scratch, and closeFds of more than fit in it', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('stream')
    const f = fs.openSync(__filename, 'r')
    const all: number[] = []
    for (let round = 0; round < 2; round++) {
      sendFds(a, 'x', new Array(253).fill(f))
      const { fds } = recvFds(b, { maxFds: 253 })
      t.is(fds.length, 253)
      t.is(new Set(fds).size, 253)
      all.push(...fds)
    }
    t.is(all.length, 506) // more than the 256 scratch slots: the array path
    closeFds(all)
    for (const fd of all.slice(0, 3)) t.throws(() => fs.fstatSync(fd), { code: 'EBADF' })
    closeFds([f, a, b])
  })
})

test.serial('closeFds still closes every fd and reports the first failure', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    const [c, d] = socketPair()
    closeFds([d])
    const err = t.throws(() => closeFds([a, d, b, c])) as NodeJS.ErrnoException
    t.is(err.code, 'EBADF')
    t.is(err.syscall, 'close')
    for (const fd of [a, b, c]) t.throws(() => fs.fstatSync(fd), { code: 'EBADF' })
  })
})

test.serial('a bad element of the fds list is named in the error', async (t) => {
  // Audited: both calls must fail before any syscall, closing nothing.
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    const err = t.throws(() => sendFds(a, 'x', [a, -5]), { instanceOf: RangeError })
    t.regex(err!.message, /"fds\[1\]"/)
    const err2 = t.throws(() => closeFds([a, 1.5]), { instanceOf: RangeError })
    t.regex(err2!.message, /"fds\[1\]"/)
    closeFds([a, b])
  })
})

test.serial('worker threads each get their own scratch', async (t) => {
  await withFdAudit(t, async () => {
    const script = `
      const { parentPort } = require('node:worker_threads')
      const { socketPair, sendFds, recvFds, closeFds } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const fs = require('node:fs')
      const [a, b] = socketPair('seqpacket')
      const f = fs.openSync(${JSON.stringify(__filename)}, 'r')
      let ok = 0
      for (let i = 0; i < 2000; i++) {
        const msg = 'w' + i
        sendFds(a, msg, [f, f])
        const { data, fds } = recvFds(b)
        if (data.toString() === msg && fds.length === 2) ok++
        closeFds(fds)
      }
      // f came from fs.openSync: Node tracks it in a worker, so fs closes it
      // (closeFds would leave Node to close the number again at exit).
      fs.closeSync(f)
      closeFds([a, b])
      parentPort.postMessage(ok)
    `
    const workers = [0, 1].map(() => new Worker(script, { eval: true }))
    const messages = workers.map((w) => once(w, 'message'))
    const exits = workers.map((w) => once(w, 'exit'))
    // The main thread uses its own scratch meanwhile.
    const [a, b] = socketPair('seqpacket')
    let mainOk = 0
    for (let i = 0; i < 2000; i++) {
      sendFds(a, `m${i}`, [a])
      const { data, fds } = recvFds(b)
      if (data.toString() === `m${i}` && fds.length === 1) mainOk++
      closeFds(fds)
    }
    closeFds([a, b])
    const results = (await Promise.all(messages)).map(([ok]) => ok as number)
    // Exited workers have closed their own fds: later audits see a quiet table.
    await Promise.all(exits)
    t.deepEqual(results, [2000, 2000])
    t.is(mainOk, 2000)
  })
})

// Node tracks the fds a worker opens with fs.open*, and closes those still
// open when the worker exits (trackUnmanagedFds). So a worker closes such an
// fd with fs.closeSync after sending it; closeFds would leave Node to close
// the number again at exit, when it may be another thread's fd.
test.serial(
  'a worker sends an fd from fs.openSync, closes it with fs.closeSync, and exits: no fd of another thread is closed',
  async (t) => {
    await withFdAudit(t, async () => {
      const [a, b] = socketPair('seqpacket')
      const script = `
      const { parentPort, workerData } = require('node:worker_threads')
      const fs = require('node:fs')
      const { sendFds } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const f = fs.openSync(${JSON.stringify(__filename)}, 'r')
      sendFds(workerData.socket, 'file', [f])
      fs.closeSync(f)
      parentPort.postMessage(f)
      parentPort.once('message', () => process.exit(0))
    `
      const worker = new Worker(script, { eval: true, workerData: { socket: a } })
      const exited = once(worker, 'exit')
      const spare: number[] = []
      let fds: number[] = []
      try {
        const [number] = (await once(worker, 'message')) as [number]
        const got = recvFds(b)
        fds = got.fds
        t.is(got.data.toString(), 'file')
        // This thread takes the number the worker closed: the received fd
        // usually lands on it (the lowest free number), else an open does.
        let mine = fds[0] === number ? number : -1
        for (let i = 0; i < 64 && mine < 0; i++) {
          const fd = fs.openSync(__filename, 'r')
          if (fd === number) mine = fd
          else spare.push(fd)
        }
        t.is(mine, number, 'this thread holds the number the worker used')
        worker.postMessage('exit')
        await exited
        t.notThrows(() => fs.fstatSync(number), 'still open after the worker exited')
        if (mine !== fds[0]) fs.closeSync(mine)
      } finally {
        worker.postMessage('exit')
        await exited
        for (const fd of spare) fs.closeSync(fd)
        closeFds([...fds, a, b])
      }
    })
  },
)

test.serial('an fd number reused by a TCP socket is refused: no per-number cache of the AF_UNIX check', async (t) => {
  await withFdAudit(t, async () => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as net.AddressInfo).port
    const f = fs.openSync(__filename, 'r')
    let reused = 0
    for (let attempt = 0; attempt < 5 && reused === 0; attempt++) {
      const [a, b] = socketPair()
      // Warm the path on `a` as an AF_UNIX socket.
      for (let i = 0; i < 3; i++) {
        sendFds(a, 'u', [f])
        closeFds(recvFds(b).fds)
      }
      // Close it behind fdpass's back, then let a TCP socket take the lowest
      // free number, which is `a`'s.
      fs.closeSync(a)
      const accepted = once(server, 'connection') as Promise<[net.Socket]>
      const client = net.connect(port, '127.0.0.1')
      await once(client, 'connect')
      const tcpFd = (client as unknown as { _handle: { fd: number } })._handle.fd
      if (tcpFd === a) {
        reused++
        const err = t.throws(() => sendFds(tcpFd, 'x', [f]))
        t.is((err as NodeJS.ErrnoException).code, 'ERR_NOT_UNIX_SOCKET')
      }
      const [peer] = await accepted
      peer.destroy()
      client.destroy()
      await Promise.all([once(peer, 'close'), once(client, 'close')])
      closeFds([b])
    }
    t.true(reused > 0, 'the TCP socket took the closed fd number')
    closeFds([f])
    server.close()
    await once(server, 'close')
  })
})
