'use strict'
// Node.js core's only fd passing: child_process subprocess.send(message,
// netSocket) over the IPC channel of a forked child (W3, W4 only: it cannot
// send to its own process, and carries net sockets and servers only).
const fs = require('node:fs')
const net = require('node:net')
const { fork } = require('node:child_process')
const { once } = require('node:events')
const { performance } = require('node:perf_hooks')
const c = require('./common')

function child(workload) {
  const pingpong = workload === 'w3'
  let base = -1
  let good = 0
  let ref = null
  process.on('message', (msg, handle) => {
    if (msg && msg.ref) {
      ref = msg.ref
      base = c.openFdCount()
      process.send('ready')
      return
    }
    if (msg === 'Q') {
      // libuv closes destroyed handles on the next loop turn.
      setTimeout(() => process.exit(c.openFdCount() === base ? 0 : 3), 50)
      return
    }
    if (msg === 'E') {
      process.send({ good })
      good = 0
      return
    }
    const fd = handle && handle._handle ? handle._handle.fd : -1
    let ok = fd >= 0
    if (ok && good === 0) {
      const st = fs.fstatSync(fd)
      ok = st.ino === ref.ino && st.dev === ref.dev
    }
    if (handle) handle.destroy()
    if (ok) good++
    if (pingpong) process.send(ok ? 'y' : 'n')
  })
}

async function main() {
  const a = c.args()
  if (a.workload === 'child') return child(a.variant)
  if (a.workload !== 'w3' && a.workload !== 'w4')
    c.skip('child_process.send passes handles to a child process only (W3, W4)')
  const pingpong = a.workload === 'w3'
  // libuv keeps an fd on /dev/null from the first listen on (its EMFILE
  // reserve): listen once before taking the baseline.
  const probe = net.createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  probe.close()
  await once(probe, 'close')
  const base = c.baselineFdCount()
  // The handle to pass: one end of a TCP connection on the loopback.
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const sock = net.connect(server.address().port, '127.0.0.1')
  await once(sock, 'connect')
  const [peer] = await accepted
  const st = fs.fstatSync(sock._handle.fd)

  const kid = fork(__filename, ['child', a.workload], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] })
  const exited = once(kid, 'exit')
  kid.send({ ref: { ino: st.ino, dev: st.dev } })
  await once(kid, 'message')

  let bad = 0
  let lat = null
  const reply = () => once(kid, 'message').then(([m]) => m)
  const endRep = async (n) => {
    const got = reply()
    kid.send('E')
    bad += n - (await got).good
  }
  const batch = pingpong
    ? async (n) => {
        for (let i = 0; i < n; i++) {
          const t0 = lat ? performance.now() : 0
          const got = reply()
          kid.send('f', sock, { keepOpen: true })
          if ((await got) !== 'y') bad++
          if (lat) lat[i] = (performance.now() - t0) * 1e3
        }
      }
    : async (n) => {
        for (let i = 0; i < n; i++) kid.send('f', sock, { keepOpen: true })
        await endRep(n)
      }
  const out = { ops: [] }
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
  kid.send('Q')
  const [code] = await exited
  sock.destroy()
  peer.destroy()
  server.close()
  await once(server, 'close')
  await new Promise((resolve) => setTimeout(resolve, 50))
  Object.assign(out, {
    unit: pingpong ? 'round trips/s' : 'fds/s',
    perRep: n,
    fdsExpected: n * a.reps,
    fdsBad: bad,
    childExit: code,
    leakedFds: c.openFdCount() - base,
  })
  c.print(out)
}

main().catch((err) => {
  c.print({ error: String(err && err.stack ? err.stack : err) })
  process.exit(1)
})
