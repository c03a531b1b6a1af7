// Does close() close the fd before it returns? Each check opens one kind of
// fdpass socket, puts it in some state (idle, a receive waiting on the event
// loop, a send queued, an accept waiting, after an abort, after an error),
// calls close() and looks at /proc/self/fd at once, in the same tick.
// Loaded by __test__/close-sync.spec.ts in the main thread and in a worker.
'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { FdSocket, SyncSocket, connect, listen, bind, sendFds } = require('fdpass')

/** What fd `fd` points at now, or null when it is closed. */
function target(fd) {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return null
  }
}

/** Calls `close` and reports whether `fd` was closed when it returned. */
function closedAtOnce(what, fd, close) {
  const before = target(fd)
  if (before === null || !before.startsWith('socket:')) throw new Error(`${what}: fd ${fd} is not an open socket`)
  close()
  // The number may already name something else (reused): then it was closed too.
  return { what, closed: target(fd) !== before }
}

const settled = (p) =>
  p.then(
    () => 'resolved',
    (e) => e.code || e.name,
  )

async function runChecks() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-close-'))
  const results = []
  for (const [type, framing] of [
    ['stream', true],
    ['stream', false],
    ['seqpacket', false],
    ['dgram', false],
  ]) {
    const kind = `${type}${framing ? ' framed' : ''}`
    const [a, b] = FdSocket.pair(type, { framing })
    const waiting = settled(b.receive())
    // Let the receive reach the event loop (the poll is started).
    await new Promise((resolve) => setImmediate(resolve))
    results.push(closedAtOnce(`pair ${kind}, a receive waiting on the loop`, b.fd, () => b.close()))
    results.push({ what: `pair ${kind}: the waiting receive`, outcome: await waiting })
    results.push(closedAtOnce(`pair ${kind}, idle`, a.fd, () => a.close()))
  }
  {
    // A send in flight: the peer reads nothing, so sends queue in fdpass.
    const [a, b] = FdSocket.pair('stream')
    const big = Buffer.alloc(256 * 1024, 1)
    const sends = []
    while (a.writableLength === 0) sends.push(settled(a.send(big, [0])))
    results.push(closedAtOnce('pair stream, a send queued', a.fd, () => a.close()))
    const outcomes = await Promise.all(sends)
    results.push({ what: 'pair stream: the queued send', outcome: outcomes[outcomes.length - 1] })
    b.close()
  }
  {
    const [a, b] = FdSocket.pair('stream')
    const ac = new AbortController()
    const waiting = settled(b.receive({ signal: ac.signal }))
    await new Promise((resolve) => setImmediate(resolve))
    ac.abort()
    results.push({ what: 'aborted receive', outcome: await waiting })
    results.push(closedAtOnce('pair stream, after an aborted receive', b.fd, () => b.close()))
    a.close()
  }
  {
    // An error the stream cannot survive closes it: by the time the
    // rejected receive settles, the fd is gone.
    const [a, b] = FdSocket.pair('stream')
    const fd = b.fd
    const before = target(fd)
    const header = Buffer.alloc(8)
    header.writeUInt16LE(1, 6) // reserved bits set
    sendFds(a.fd, header, [])
    const outcome = await settled(b.receive())
    results.push({ what: 'after a protocol error', outcome, closed: target(fd) !== before })
    a.close()
    b.close()
  }
  for (const type of ['stream', 'seqpacket']) {
    const file = path.join(dir, `l-${type}`)
    const server = await listen(file, { type })
    const client = await connect(file, { type })
    const accepted = await server.accept()
    const waiting = settled(client.receive())
    await new Promise((resolve) => setImmediate(resolve))
    results.push(closedAtOnce(`connect() ${type}, a receive waiting`, client.fd, () => client.close()))
    await waiting
    results.push(closedAtOnce(`accepted ${type}, idle`, accepted.fd, () => accepted.close()))
    const accepting = settled(server.accept())
    await new Promise((resolve) => setImmediate(resolve))
    let closing
    results.push(
      closedAtOnce(`listen() ${type}, an accept waiting: server.close()`, server.fd, () => (closing = server.close())),
    )
    await closing
    results.push({ what: `listen() ${type}: the waiting accept`, outcome: await accepting })
  }
  {
    const sock = await bind(path.join(dir, 'd'))
    const waiting = settled(sock.receive())
    await new Promise((resolve) => setImmediate(resolve))
    results.push(closedAtOnce('bind() dgram, a receive waiting', sock.fd, () => sock.close()))
    await waiting
  }
  for (const type of ['stream', 'seqpacket', 'dgram']) {
    const [a, b] = SyncSocket.pair(type)
    results.push(closedAtOnce(`SyncSocket ${type}`, a.fd, () => a.close()))
    b.close()
  }
  fs.rmSync(dir, { recursive: true, force: true })
  return results
}

module.exports = { runChecks }
