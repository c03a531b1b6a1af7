// A Node peer for the reliability and hostile-peer tests, run as a
// child process, its socket (when it has one) on fd 3. Modes:
//   send-close N         sends N framed messages, each with a freshly opened fd
//                        of a temp file whose offset it moved to i % 100, and
//                        closes its copy right after send() returns
//   emfile raw|framed    fills its fd table up to 3 free slots (run it under a
//                        low RLIMIT_NOFILE), prints "ready", receives a message
//                        of 10 fds (fails), frees the slots, receives the next
//   toomanyrefs          (as nobody, RLIMIT_NOFILE 64) sends 1-fd messages to a
//                        pair end it never reads until sendFds fails; drains;
//                        sends again
//   gc                   (--expose-gc) drops idle sockets without close()
//   gc-readahead         (--expose-gc) drops a socket holding a read-ahead
//                        message with fds, without close()
//   exercise             receives with every API (for the strace test)
//   ping-loop N          asks for a message and says so ('y'); then N times:
//                        takes the message (delivered by the event loop),
//                        closes its fds, asks for the next, and replies 'y'
//                        (so each 'y' says it waits for the next message)
//   receive-then-idle    asks for one message and prints "ready" (it waits on
//                        the event loop), closes its fds, reports, and leaves
//                        the socket open with nothing pending: the process
//                        must exit by itself
//   signal               blocks in raw recvFds with a SIGUSR1 handler installed
//   flood-reader MAXFDS READAHEAD [FRAMING MAXQUEUEDFDS COUNT]  (--expose-gc)
//                        reads a flood slowly (FRAMING 'unframed' turns
//                        framing off; it stops after COUNT messages when
//                        given), samples its fd count and RSS
// Prints one JSON line: results and whether its fd table came back.
'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { FdSocket, socketPair, sendFds, recvFds, closeFds } = require('fdpass')

const { openFds, sameFdsAs, targetsOf } = require('./open-fds.js')

/** fd numbers with what they point at, for reports. */
function describe(fds) {
  return fds.map((fd) => {
    try {
      return `${fd}=${fs.readlinkSync(`/proc/self/fd/${fd}`)}`
    } catch {
      return `${fd}=?`
    }
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const codeOf = (err) => (err && err.code) || String(err)

async function gcHard() {
  for (let i = 0; i < 6; i++) {
    global.gc()
    await sleep(20)
  }
}

/** Takes up every free fd slot but `free`; returns the placeholders. */
function fillFdTable(free) {
  const placeholders = []
  for (;;) {
    try {
      placeholders.push(fs.openSync('/dev/null', 'r'))
    } catch (err) {
      if (err.code !== 'EMFILE') throw err
      break
    }
  }
  closeFds(placeholders.splice(placeholders.length - free, free))
  return placeholders
}

async function main() {
  const [mode, arg, arg2] = process.argv.slice(2)
  // Node sets up its stdio streams lazily and opens an fd doing so (/dev/null
  // for a pipe): do it now, not in the middle of an fd audit.
  void process.stdout
  void process.stderr
  const before = openFds()
  const beforeTargets = targetsOf(before)
  const report = { mode }
  let usesFd3 = true
  if (mode === 'send-close') {
    const n = Number(arg)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-rel-'))
    const file = path.join(dir, 'data')
    fs.writeFileSync(file, Buffer.alloc(200, 'a'))
    const sock = FdSocket.from(3)
    const buf = Buffer.alloc(100)
    let pending = []
    for (let i = 0; i < n; i++) {
      const fd = fs.openSync(file, 'r')
      if (i % 100 > 0) fs.readSync(fd, buf, 0, i % 100, null)
      pending.push(sock.send(String(i), [fd]))
      closeFds([fd]) // right after sending: the message must still carry a working fd
      if (pending.length === 100) {
        await Promise.all(pending)
        pending = []
      }
    }
    await Promise.all(pending)
    fs.rmSync(dir, { recursive: true })
    const done = await sock.receive({ signal: AbortSignal.timeout(20000) })
    report.done = done.data.toString()
    report.sent = n
    sock.close()
  } else if (mode === 'emfile') {
    // fd 3 is a blocking stream socket from the parent.
    const framed = arg === 'framed'
    const sock = framed ? FdSocket.from(3) : undefined
    const placeholders = fillFdTable(3)
    const beforeReceive = openFds()
    console.log(JSON.stringify({ ready: true, free: 3 }))
    if (framed) {
      try {
        const m = await sock.receive({ signal: AbortSignal.timeout(20000) })
        report.first = { data: m.data.toString(), fds: m.fds.length }
        closeFds(m.fds)
      } catch (err) {
        report.firstError = codeOf(err)
        report.firstMessage = err.message
      }
      report.leakedByError = describe(openFds().filter((fd) => !beforeReceive.includes(fd)))
      closeFds(placeholders)
      try {
        const m = await sock.receive({ signal: AbortSignal.timeout(5000) })
        report.second = { data: m.data.toString(), fds: m.fds.length }
        closeFds(m.fds)
      } catch (err) {
        report.secondError = codeOf(err)
      }
      sock.close()
    } else {
      try {
        const m = recvFds(3)
        report.first = { data: m.data.toString(), fds: m.fds.length }
        closeFds(m.fds)
      } catch (err) {
        report.firstError = codeOf(err)
        report.firstMessage = err.message
      }
      report.leakedByError = describe(openFds().filter((fd) => !beforeReceive.includes(fd)))
      closeFds(placeholders)
      const m = recvFds(3)
      report.second = { data: m.data.toString(), fds: m.fds.length }
      report.secondFdsWork = m.fds.every((fd) => fs.fstatSync(fd).isFile())
      closeFds(m.fds)
      closeFds([3])
    }
  } else if (mode === 'toomanyrefs') {
    usesFd3 = false
    report.uid = process.getuid()
    const [a, b] = socketPair('seqpacket')
    let sent = 0
    try {
      for (; sent < 10000; sent++) {
        const fd = fs.openSync('/dev/null', 'r')
        try {
          sendFds(a, 'x', [fd])
        } finally {
          closeFds([fd]) // the local copy: only the in-flight one remains
        }
      }
    } catch (err) {
      report.code = codeOf(err)
      report.syscall = err.syscall
      report.message = err.message
    }
    report.sentBeforeError = sent
    // Drain: every queued message still arrives with its fd.
    let drained = 0
    for (let i = 0; i < sent; i++) {
      const m = recvFds(b)
      if (m.data.toString() === 'x' && m.fds.length === 1) drained++
      closeFds(m.fds)
    }
    report.drained = drained
    const fd = fs.openSync('/dev/null', 'r')
    sendFds(a, 'after', [fd])
    closeFds([fd])
    const m = recvFds(b)
    report.afterDrain = { data: m.data.toString(), fds: m.fds.length }
    closeFds([...m.fds, a, b])
  } else if (mode === 'gc') {
    usesFd3 = false
    const f = fs.openSync(__filename, 'r')
    const baseline = openFds().length
    // In a function of its own: a suspended async frame would keep the last
    // pair reachable from its saved registers.
    const makeIdle = async (i) => {
      const [a, b] = FdSocket.pair(i % 3 === 0 ? 'stream' : i % 3 === 1 ? 'seqpacket' : 'dgram')
      // Some of them have carried a message before going idle.
      if (i % 2 === 0) {
        await a.send('m', [f])
        const m = await b.receive()
        closeFds(m.fds)
      }
    }
    for (let i = 0; i < 50; i++) await makeIdle(i)
    report.withSockets = openFds().length - baseline
    await gcHard()
    report.afterGc = openFds().length - baseline
    report.left = describe(openFds().filter((fd) => fd > f))
    closeFds([f])
  } else if (mode === 'gc-readahead') {
    usesFd3 = false
    const f = fs.openSync(__filename, 'r')
    const baseline = openFds().length
    await (async () => {
      const [a, b] = FdSocket.pair()
      // A receive waiting on the event loop reads ahead when the socket
      // becomes readable: 'two' and its fds end up held by b.
      const first = b.receive()
      await Promise.all([a.send('one', [f]), a.send('two', [f, f])])
      const m = await first
      closeFds(m.fds)
      await sleep(10)
    })()
    report.held = openFds().length - baseline
    await gcHard()
    report.afterGc = openFds().length - baseline
    closeFds([f])
  } else if (mode === 'exercise') {
    usesFd3 = false
    const f = fs.openSync(__filename, 'r')
    const [a, b] = socketPair('stream')
    sendFds(a, 'raw', [f, f])
    const m = recvFds(b)
    closeFds([...m.fds, a, b])
    let received = m.fds.length
    for (const [type, framing] of [
      ['stream', true],
      ['stream', false],
      ['seqpacket', false],
      ['dgram', false],
    ]) {
      const [x, y] = FdSocket.pair(type, { framing })
      await x.send('ev', [f])
      const got = await y.receive()
      received += got.fds.length
      closeFds(got.fds)
      const later = y.receive() // waits on the event loop, then reads
      await sleep(5)
      await x.send('later', [f])
      const got2 = await later
      received += got2.fds.length
      closeFds(got2.fds)
      x.close()
      y.close()
    }
    closeFds([f])
    report.received = received
  } else if (mode === 'ping-loop') {
    const n = Number(arg)
    const sock = FdSocket.from(3)
    let fds = 0
    let next = sock.receive()
    await sock.send('y')
    for (let i = 0; i < n; i++) {
      const m = await next
      fds += m.fds.length
      closeFds(m.fds)
      // Asked again by the code that handles the message, as a loop over
      // receive() does; the reply then tells the parent that it waits.
      if (i + 1 < n) next = sock.receive()
      await sock.send('y')
    }
    report.received = n
    report.fdsReceived = fds
    sock.close()
  } else if (mode === 'receive-then-idle') {
    // Left open on purpose: fd 3 stays in the table.
    usesFd3 = false
    const sock = FdSocket.from(3)
    const pending = sock.receive()
    console.log(JSON.stringify({ ready: true }))
    const m = await pending
    closeFds(m.fds)
    report.got = m.data.toString()
    report.fdsReceived = m.fds.length
  } else if (mode === 'signal') {
    report.signals = 0
    process.on('SIGUSR1', () => report.signals++)
    console.log(JSON.stringify({ ready: true }))
    const m = recvFds(3) // blocks; SIGUSR1 arrives meanwhile
    report.signalsSeenWhenRecvReturned = report.signals
    report.data = m.data.toString()
    report.fds = m.fds.length
    report.fdWorks = m.fds.every((fd) => fs.fstatSync(fd).isFile())
    closeFds(m.fds)
    await sleep(50) // now the JavaScript handler runs
    closeFds([3])
  } else if (mode === 'flood-reader') {
    const maxFds = Number(arg)
    const readAhead = Number(arg2)
    await gcHard()
    report.rssBefore = process.memoryUsage().rss
    const baseline = openFds().length
    const [, , , , , framing = 'framed', maxQueuedFds, count] = process.argv
    const options = { maxFds, readAhead, framing: framing !== 'unframed' }
    if (maxQueuedFds !== undefined) options.maxQueuedFds = Number(maxQueuedFds)
    const expected = count === undefined ? Infinity : Number(count)
    const sock = FdSocket.from(3, options)
    let maxOpen = 0
    let received = 0
    let fdsReceived = 0
    const sampler = setInterval(() => {
      maxOpen = Math.max(maxOpen, fs.readdirSync('/proc/self/fd').length - 1)
    }, 5)
    try {
      while (received < expected) {
        const m = await sock.receive({ signal: AbortSignal.timeout(30000) })
        received++
        fdsReceived += m.fds.length
        maxOpen = Math.max(maxOpen, fs.readdirSync('/proc/self/fd').length - 1)
        closeFds(m.fds)
        if (received % 20 === 0) await sleep(5) // a slow reader
      }
    } catch (err) {
      report.error = codeOf(err)
      report.errorMessage = err.message
    }
    clearInterval(sampler)
    report.received = received
    report.fdsReceived = fdsReceived
    report.baseline = baseline
    report.maxOpen = maxOpen
    sock.close()
    await gcHard()
    report.rssAfter = process.memoryUsage().rss
  } else {
    throw new Error(`unknown mode ${mode}`)
  }
  // A closed FdSocket's fd is released once the event loop lets go of it.
  await sleep(20)
  const after = openFds()
  report.fdAuditOk = sameFdsAs(before, beforeTargets, after, usesFd3 ? [3] : [])
  report.fdsBefore = before
  report.fdsAfter = after
  console.log(JSON.stringify(report))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
