'use strict'
// fdpass FdSocket, the async event-loop API: await a.send(data, fds) and
// await b.receive() -> { data, fds }; across processes FdSocket.from(3) in
// the child. With FDBENCH_API=many every receive is a receiveMany():
// `for (const m of await b.receiveMany())` in the receiving child, and where
// one message is in flight (W1-W3) the batch must hold exactly that one.
const path = require('node:path')
const fs = require('node:fs')
const { spawn } = require('node:child_process')
const { performance } = require('node:perf_hooks')
const c = require('./common')

const fdpass = require(path.resolve(__dirname, '..', '..'))
const { FdSocket, socketPair, closeFds } = fdpass

const X = Buffer.from('f')
const many = process.env.FDBENCH_API === 'many'

/** The message of a receiveMany() made with exactly one message in flight. */
function only(batch) {
  if (batch.length !== 1) throw new Error(`receiveMany brought ${batch.length} messages, 1 was in flight`)
  return batch[0]
}

/** Receives until `n` bytes have arrived (a stream may split the reply). */
async function receiveBytes(sock, n) {
  const parts = []
  let got = 0
  while (got < n) {
    const { data, fds } = await sock.receive()
    if (fds.length) closeFds(fds)
    if (data.length === 0) throw new Error('end of stream')
    parts.push(data)
    got += data.length
  }
  return Buffer.concat(parts)
}

async function child(workload) {
  const pingpong = workload === 'w3'
  const ref = fs.statSync('/dev/null')
  const sock = FdSocket.from(3)
  const base = c.openFdCount()
  let good = 0
  /** Checks one message; returns the reply to send (none: undefined), or null to quit. */
  const handle = (data, fds) => {
    if (data.length === 0) process.exit(2)
    const tag = data[0]
    if (tag === 0x51 /* Q */) return null
    if (tag === 0x45 /* E */) {
      const out = Buffer.alloc(8)
      out.writeBigInt64LE(BigInt(good))
      good = 0
      return out
    }
    let ok = fds.length === 1 && (good > 0 || c.sameFile(fds[0], ref))
    try {
      closeFds(fds)
    } catch {
      ok = false
    }
    if (ok) good++
    return pingpong ? Buffer.from(ok ? 'y' : 'n') : undefined
  }
  receiving: for (;;) {
    if (many) {
      for (const { data, fds } of await sock.receiveMany()) {
        const reply = handle(data, fds)
        if (reply === null) break receiving
        if (reply) await sock.send(reply)
      }
    } else {
      const { data, fds } = await sock.receive()
      const reply = handle(data, fds)
      if (reply === null) break
      if (reply) await sock.send(reply)
    }
  }
  // close() closes fd 3 before it returns: one fd fewer than at the start.
  sock.close()
  process.exit(c.openFdCount() === base - 1 ? 0 : 3)
}

async function main() {
  const a = c.args()
  if (a.workload === 'child') return child(a.variant)
  const base = c.baselineFdCount()
  const file = fs.openSync('/dev/null', 'r')
  const ref = fs.fstatSync(file)
  let bad = 0
  const out = { ops: [] }

  if (a.workload === 'w1' || a.workload === 'w2') {
    const nfds = a.workload === 'w1' ? 1 : Number(a.variant)
    const [s, r] = FdSocket.pair(a.workload === 'w1' ? a.variant : 'stream')
    const sent = new Array(nfds).fill(file)
    const batch = async (n) => {
      for (let i = 0; i < n; i++) {
        await s.send(X, sent)
        const { fds } = many ? only(await r.receiveMany()) : await r.receive()
        if (fds.length !== nfds) bad += Math.abs(nfds - fds.length)
        if (i === 0 && !c.sameFile(fds[0], ref)) bad++
        try {
          closeFds(fds)
        } catch {
          bad += fds.length
        }
      }
    }
    const n = await c.calibrate(batch, a.seconds)
    bad = 0
    for (let rep = 0; rep < a.reps; rep++) out.ops.push(await c.timed(batch, n))
    s.close()
    r.close()
    Object.assign(out, {
      unit: a.workload === 'w1' ? 'round trips/s' : 'messages/s',
      perRep: n,
      fdsExpected: n * nfds * a.reps,
    })
  } else if (a.workload === 'w3' || a.workload === 'w4') {
    const pingpong = a.workload === 'w3'
    const [mine, theirs] = socketPair('stream')
    const kid = spawn(process.execPath, [__filename, 'child', a.workload], {
      stdio: ['inherit', 'inherit', 'inherit', theirs],
    })
    const exited = new Promise((resolve) => kid.on('exit', (code) => resolve(code ?? 128)))
    closeFds([theirs])
    const s = FdSocket.from(mine)
    const one = [file]
    const endRep = async (n) => {
      await s.send(Buffer.from('E'))
      bad += n - Number((await receiveBytes(s, 8)).readBigInt64LE())
    }
    let lat = null
    const batch = pingpong
      ? async (n) => {
          for (let i = 0; i < n; i++) {
            const t0 = lat ? performance.now() : 0
            await s.send(X, one)
            const { data } = many ? only(await s.receiveMany()) : await s.receive()
            if (lat) lat[i] = (performance.now() - t0) * 1e3
            if (data[0] !== 0x79) bad++
          }
        }
      : async (n) => {
          // Streaming: sends are not awaited one by one, but a window of them,
          // as a sender that respects backpressure does (an unbounded queue
          // would hold a duplicate of every queued fd).
          let pending = []
          for (let i = 0; i < n; i++) {
            pending.push(s.send(X, one))
            if (pending.length === 256) {
              await Promise.all(pending)
              pending = []
            }
          }
          await Promise.all(pending)
          await endRep(n)
        }
    const { n, ...measured } = await c.measureTwoProcess({
      batch,
      endRep,
      pingpong,
      seconds: a.seconds,
      reps: a.reps,
      useLatencies: (l) => (lat = l),
      onCalibrated: () => (bad = 0),
    })
    Object.assign(out, measured)
    await s.send(Buffer.from('Q'))
    out.childExit = await exited
    s.close()
    Object.assign(out, { unit: pingpong ? 'round trips/s' : 'fds/s', perRep: n, fdsExpected: n * a.reps })
  } else {
    c.skip(`unknown workload ${a.workload}`)
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  fs.closeSync(file)
  out.fdsBad = bad
  out.leakedFds = c.openFdCount() - base
  c.print(out)
  process.exit(0)
}

main().catch((err) => {
  c.print({ error: String(err && err.stack ? err.stack : err) })
  process.exit(1)
})
