'use strict'
// fdpass raw sync API, in one of its two forms (FDBENCH_API):
// - 'sync' (default): a SyncSocket, which owns its socket and checked it is
//   AF_UNIX once: s.send(data, fds) / s.receive();
// - 'numbers': sendFds / recvFds on plain fd numbers, which check AF_UNIX on
//   every send (one getsockopt).
// Received fds are closed with closeFds in both.
const path = require('node:path')
const fs = require('node:fs')
const { spawn } = require('node:child_process')
const { performance } = require('node:perf_hooks')
const c = require('./common')

const fdpass = require(path.resolve(__dirname, '..', '..'))
const { SyncSocket, socketPair, sendFds, recvFds, closeFds } = fdpass

const api =
  process.env.FDBENCH_API === 'numbers'
    ? {
        pair: (type) => socketPair(type),
        adopt: (fd) => fd,
        fdOf: (s) => s,
        send: (s, data, fds) => sendFds(s, data, fds),
        recv: (s, options) => recvFds(s, options),
        close: (s) => closeFds([s]),
      }
    : {
        pair: (type) => SyncSocket.pair(type),
        adopt: (fd) => SyncSocket.from(fd),
        fdOf: (s) => s.fd,
        send: (s, data, fds) => s.send(data, fds),
        recv: (s, options) => s.receive(options),
        close: (s) => s.close(),
      }

const X = Buffer.from('f')
const RECV_ONE = { maxBytes: 1, maxFds: 1 }
const REPLY = { maxBytes: 1, maxFds: 0 }

/** Reads exactly n bytes (no fds expected) from a stream socket. */
function readExactly(sock, n) {
  const parts = []
  let got = 0
  while (got < n) {
    const { data, fds } = api.recv(sock, { maxBytes: n - got, maxFds: 0 })
    if (fds.length) closeFds(fds)
    if (data.length === 0) throw new Error('end of stream')
    parts.push(data)
    got += data.length
  }
  return Buffer.concat(parts)
}

function child(workload) {
  const sock = api.adopt(3)
  const pingpong = workload === 'w3'
  const ref = fs.statSync('/dev/null')
  const base = c.openFdCount()
  let good = 0
  const yes = Buffer.from('y')
  const no = Buffer.from('n')
  for (;;) {
    const { data, fds } = api.recv(sock, RECV_ONE)
    if (data.length === 0) process.exit(2)
    const tag = data[0]
    if (tag === 0x51 /* Q */) break
    if (tag === 0x45 /* E */) {
      const out = Buffer.alloc(8)
      out.writeBigInt64LE(BigInt(good))
      api.send(sock, out)
      good = 0
      continue
    }
    let ok = fds.length === 1 && (good > 0 || c.sameFile(fds[0], ref))
    try {
      closeFds(fds)
    } catch {
      ok = false
    }
    if (ok) good++
    if (pingpong) api.send(sock, ok ? yes : no)
  }
  process.exit(c.openFdCount() === base ? 0 : 3)
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
    const [s, r] = api.pair(a.workload === 'w1' ? a.variant : 'stream')
    const sent = new Array(nfds).fill(file)
    const batch = (n) => {
      for (let i = 0; i < n; i++) {
        api.send(s, X, sent)
        const { fds } = api.recv(r)
        if (fds.length !== nfds) bad += nfds - fds.length
        if (i === 0 && !c.sameFile(fds[0], ref)) bad++
        try {
          closeFds(fds)
        } catch {
          bad += fds.length
        }
      }
    }
    let n = await c.calibrate(batch, a.seconds)
    bad = 0
    for (let rep = 0; rep < a.reps; rep++) out.ops.push(await c.timed(batch, n))
    api.close(s)
    api.close(r)
    Object.assign(out, {
      unit: a.workload === 'w1' ? 'round trips/s' : 'messages/s',
      perRep: n,
      fdsExpected: n * nfds * a.reps,
    })
  } else if (a.workload === 'w3' || a.workload === 'w4') {
    const pingpong = a.workload === 'w3'
    const [s, theirs] = api.pair('stream')
    const kid = spawn(process.execPath, [__filename, 'child', a.workload], {
      stdio: ['inherit', 'inherit', 'inherit', api.fdOf(theirs)],
    })
    const exited = new Promise((resolve) => kid.on('exit', (code) => resolve(code ?? 128)))
    api.close(theirs)
    const one = [file]
    const endRep = (n) => {
      api.send(s, 'E')
      const good = Number(readExactly(s, 8).readBigInt64LE())
      bad += n - good
    }
    let lat = null
    const batch = pingpong
      ? (n) => {
          for (let i = 0; i < n; i++) {
            const t0 = lat ? performance.now() : 0
            api.send(s, X, one)
            const { data } = api.recv(s, REPLY)
            if (lat) lat[i] = (performance.now() - t0) * 1e3
            if (data[0] !== 0x79) bad++
          }
        }
      : (n) => {
          for (let i = 0; i < n; i++) api.send(s, X, one)
          endRep(n)
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
    api.send(s, 'Q')
    out.childExit = await exited
    api.close(s)
    Object.assign(out, { unit: pingpong ? 'round trips/s' : 'fds/s', perRep: n, fdsExpected: n * a.reps })
  } else {
    c.skip(`unknown workload ${a.workload}`)
  }
  closeFds([file])
  out.fdsBad = bad
  out.leakedFds = c.openFdCount() - base
  c.print(out)
}

main().catch((err) => {
  c.print({ error: String(err && err.stack ? err.stack : err) })
  process.exit(1)
})
