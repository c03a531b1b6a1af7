'use strict'
// fdpass FdStream, the Duplex face: W5, a byte stream with one fd every
// <variant> KiB, as the C reference's W5 (bench/c/fdbench.c). The parent
// writes, per batch, an 8-byte count n, then n chunks with
// write({ data, fds: [file] }) honouring write()'s backpressure ('drain'); the
// child, FdStream.from(3), counts the bytes of its 'data' events, takes the
// fds with takeFds() and closes them, and answers the number of good fds.
const path = require('node:path')
const fs = require('node:fs')
const { once } = require('node:events')
const { spawn } = require('node:child_process')
const c = require('./common')

const { FdStream, socketPair, closeFds } = require(path.resolve(__dirname, '..', '..'))

async function child(chunk) {
  const ref = fs.statSync('/dev/null')
  const stream = FdStream.from(3)
  // Fd 3 itself left out: the parent's end may close it before the audit.
  const others = () => c.openFdCount() - (stream.destroyed ? 0 : 1)
  const base = others()
  let header = Buffer.alloc(0)
  let left = -1 // bytes of the batch still to come; -1: reading its header
  let good = 0
  const done = new Promise((resolve) => {
    stream.on('data', (data) => {
      if (left < 0) {
        header = Buffer.concat([header, data])
        if (header.length < 8) return
        const n = Number(header.readBigInt64LE(0))
        if (n === 0) return resolve()
        data = header.subarray(8)
        header = Buffer.alloc(0)
        left = n * chunk
        good = 0
      }
      left -= data.length
      const fds = stream.takeFds()
      if (fds.length > 0) {
        let ok = good > 0 || c.sameFile(fds[0], ref)
        try {
          closeFds(fds)
        } catch {
          ok = false
        }
        if (ok) good += fds.length
      }
      if (left === 0) {
        const out = Buffer.alloc(8)
        out.writeBigInt64LE(BigInt(good))
        stream.write(out)
        left = -1
      }
    })
  })
  await done
  process.exit(others() === base ? 0 : 3)
}

async function main() {
  const a = c.args()
  if (a.workload === 'child') return child(Number(a.variant) * 1024)
  if (a.workload !== 'w5') c.skip(`FdStream is measured on W5 only (${a.workload} is measured on FdSocket)`)
  const chunk = Number(a.variant) * 1024
  const base = c.baselineFdCount()
  const file = fs.openSync('/dev/null', 'r')
  const [ours, theirs] = socketPair('stream')
  const kid = spawn(process.execPath, [__filename, 'child', a.variant], {
    stdio: ['inherit', 'inherit', 'inherit', theirs],
  })
  closeFds([theirs])
  const stream = FdStream.from(ours)
  const data = Buffer.alloc(chunk)
  let bad = 0
  // The child's answers, 8 bytes each, and the batch waiting for one.
  let replies = Buffer.alloc(0)
  let waiting = null
  const settle = () => {
    if (waiting === null || replies.length < 8) return
    const good = Number(replies.readBigInt64LE(0))
    replies = replies.subarray(8)
    const resolve = waiting
    waiting = null
    resolve(good)
  }
  stream.on('data', (d) => {
    replies = Buffer.concat([replies, d])
    settle()
  })
  const batch = async (n) => {
    const header = Buffer.alloc(8)
    header.writeBigInt64LE(BigInt(n))
    stream.write(header)
    for (let i = 0; i < n; i++) {
      if (!stream.write({ data, fds: [file] })) await once(stream, 'drain')
    }
    // The answer may have come while the last write waited for 'drain'.
    const good = await new Promise((resolve) => {
      waiting = resolve
      settle()
    })
    bad += n - good
  }
  const n = await c.calibrate(batch, a.seconds)
  bad = 0
  const ops = []
  for (let rep = 0; rep < a.reps; rep++) ops.push((await c.timed(batch, n)) * chunk)
  const zero = Buffer.alloc(8)
  stream.end(zero)
  const [code, signal] = await once(kid, 'exit')
  stream.destroy()
  if (!stream.closed) await once(stream, 'close')
  closeFds([file])
  c.print({
    unit: 'bytes/s',
    ops,
    perRep: n,
    fdsExpected: n * a.reps,
    fdsBad: bad,
    childExit: code ?? 128,
    leakedFds: c.openFdCount() - base,
    signal: signal ?? undefined,
  })
}

main().catch((err) => {
  c.print({ error: String(err && err.stack ? err.stack : err) })
  process.exit(1)
})
