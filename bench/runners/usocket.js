'use strict'
// usocket (npm), the addon fd-passing streams: USocket.write({ data, fds })
// and read(length, count) on the 'readable' event. Stream sockets only.
// Loaded from bench/.deps (installed by bench/run.js), else skipped.
const path = require('node:path')
const fs = require('node:fs')
const { spawn } = require('node:child_process')
const { performance } = require('node:perf_hooks')
const c = require('./common')

let usocket
try {
  usocket = require(path.join(__dirname, '..', '.deps', 'node_modules', 'usocket'))
} catch (err) {
  c.skip(`usocket is not installed or did not build (${String(err.message).split('\n')[0]})`)
}
const { socketPair, closeFds } = require(path.resolve(__dirname, '..', '..'))

const X = Buffer.from('f')

/** The next message of at least `len` bytes and every fd queued with it. */
function readMessage(sock, len) {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const m = sock.read(len, null)
      if (!m) return
      sock.removeListener('readable', attempt)
      clearTimeout(timer)
      resolve(m)
    }
    // Lost fds would otherwise leave a reader waiting forever.
    const timer = setTimeout(() => {
      sock.removeListener('readable', attempt)
      reject(new Error(`usocket: no message of ${len} byte(s) within 5 s`))
    }, 5000)
    sock.on('readable', attempt)
    attempt()
  })
}

function closeAll(fds) {
  let bad = 0
  for (const fd of fds) {
    try {
      fs.closeSync(fd)
    } catch {
      bad++
    }
  }
  return bad
}

async function child(workload) {
  const pingpong = workload === 'w3'
  const ref = fs.statSync('/dev/null')
  const sock = new usocket.USocket({ fd: 3 })
  const base = c.openFdCount()
  let good = 0
  for (;;) {
    const { data, fds } = await readMessage(sock, 1)
    const tag = data[0]
    if (tag === 0x51 /* Q */) break
    if (tag === 0x45 /* E */) {
      const out = Buffer.alloc(8)
      out.writeBigInt64LE(BigInt(good))
      sock.write(out)
      good = 0
      continue
    }
    let ok = fds.length === 1 && (good > 0 || c.sameFile(fds[0], ref))
    if (closeAll(fds)) ok = false
    if (ok) good++
    if (pingpong) sock.write(Buffer.from(ok ? 'y' : 'n'))
  }
  process.exit(c.openFdCount() === base ? 0 : 3)
}

async function main() {
  const a = c.args()
  if (a.workload === 'child') return child(a.variant)
  if (a.workload === 'w1' && a.variant !== 'stream') c.skip('usocket supports stream sockets only')
  const base = c.baselineFdCount()
  const file = fs.openSync('/dev/null', 'r')
  const ref = fs.fstatSync(file)
  let bad = 0
  const out = { ops: [] }
  const wrap = (fd) => new usocket.USocket({ fd })

  if (a.workload === 'w1' || a.workload === 'w2') {
    const nfds = a.workload === 'w1' ? 1 : Number(a.variant)
    const [sFd, rFd] = socketPair('stream')
    const s = wrap(sFd)
    const r = wrap(rFd)
    const sent = new Array(nfds).fill(file)
    const batch = async (n) => {
      for (let i = 0; i < n; i++) {
        s.write({ data: X, fds: sent })
        const { fds } = await readMessage(r, 1)
        if (fds.length !== nfds) bad += Math.abs(nfds - fds.length)
        if (i === 0 && !c.sameFile(fds[0], ref)) bad++
        bad += closeAll(fds)
      }
    }
    const n = await c.calibrate(batch, a.seconds)
    bad = 0
    for (let rep = 0; rep < a.reps; rep++) out.ops.push(await c.timed(batch, n))
    s.destroy()
    r.destroy()
    Object.assign(out, {
      unit: a.workload === 'w1' ? 'round trips/s' : 'messages/s',
      perRep: n,
      fdsExpected: n * nfds * a.reps,
    })
  } else if (a.workload === 'w3' || a.workload === 'w4') {
    const pingpong = a.workload === 'w3'
    const [sFd, theirs] = socketPair('stream')
    const kid = spawn(process.execPath, [__filename, 'child', a.workload], {
      stdio: ['inherit', 'inherit', 'inherit', theirs],
    })
    const exited = new Promise((resolve) => kid.on('exit', (code) => resolve(code ?? 128)))
    closeFds([theirs])
    const s = wrap(sFd)
    const one = [file]
    const endRep = async (n) => {
      s.write(Buffer.from('E'))
      const { data } = await readMessage(s, 8)
      bad += n - Number(data.readBigInt64LE())
    }
    let lat = null
    const batch = pingpong
      ? async (n) => {
          for (let i = 0; i < n; i++) {
            const t0 = lat ? performance.now() : 0
            s.write({ data: X, fds: one })
            const { data } = await readMessage(s, 1)
            if (lat) lat[i] = (performance.now() - t0) * 1e3
            if (data[0] !== 0x79) bad++
          }
        }
      : async (n) => {
          for (let i = 0; i < n; i++) s.write({ data: X, fds: one })
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
    s.write(Buffer.from('Q'))
    out.childExit = await exited
    s.destroy()
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
  c.print({ error: String(err && err.message ? err.message : err) })
  process.exit(1)
})
