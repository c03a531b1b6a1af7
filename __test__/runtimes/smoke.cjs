// The runtime smoke suite: the same checks on Node, Bun and Deno (run by
// scripts/runtimes.sh on each). Plain CommonJS with node: modules only, so
// that every runtime runs it unchanged:
//
//   node __test__/runtimes/smoke.cjs
//   bun __test__/runtimes/smoke.cjs
//   deno run -A __test__/runtimes/smoke.cjs
//
// Each case prints "ok - name" or "not ok - name: why"; the last line is
// "<runtime> <version>: N passed, M failed" and the exit code is 1 if any
// failed. Every case audits this process's fds (/proc/self/fd) before and
// after; the child-process case also has the child audit its own.
'use strict'
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { openFds, auditFds, readReceived, runtime } = require('./support.cjs')
const fdpass = require('../..')

const { closeFds, connect, fdKind, FdSocket, listen, memfd, recvFds, sendFds, socketPair, SyncSocket } = fdpass
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-smoke-'))
const cases = []
const check = (name, fn, audit = 'all') => cases.push({ name, fn, audit })
// Bun has no uv_poll: fdpass's event-loop sockets refuse to start there (README, "Runtimes").
const eventLoop = runtime.name !== 'bun'
const checkEventLoop = (name, fn) => (eventLoop ? check(name, fn) : undefined)

/** A file with `text` in it, opened with node:fs (an fd of this runtime's own). */
function fileWith(text) {
  const file = path.join(tmp, `f${cases.length}-${Math.random().toString(36).slice(2)}`)
  fs.writeFileSync(file, text)
  const fd = fs.openSync(file, 'r')
  fs.unlinkSync(file)
  return fd
}

/** What an fd points at, from /proc (independent of the runtime's fd table). */
const target = (fd) => fs.readlinkSync(`/proc/self/fd/${fd}`)

/** Whether close-on-exec is set, from /proc/self/fdinfo. */
const cloexec = (fd) =>
  (parseInt(/^flags:\s+(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))[1], 8) & 0o2000000) !== 0

check('raw API: sendFds/recvFds carry a node:fs fd and a memfd; received fds are close-on-exec', () => {
  const [a, b] = socketPair()
  const file = fileWith('raw file')
  const shm = memfd('smoke', 64)
  assert.equal(sendFds(a, 'hello', [file, shm]), 5)
  const { data, fds } = recvFds(b)
  assert.equal(data.toString(), 'hello')
  assert.equal(fds.length, 2)
  assert.equal(target(fds[0]), target(file))
  assert.equal(target(fds[1]), target(shm))
  assert.equal(fdKind(fds[0]), 'file')
  assert.ok(fds.every(cloexec), 'close-on-exec')
  assert.equal(readReceived(fds[0]), 'raw file')
  fs.closeSync(file)
  closeFds([...fds, shm, a, b])
})

check('raw API: bad input throws a TypeError/RangeError with a code, before any syscall', () => {
  assert.throws(() => sendFds(-1, 'x'), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => sendFds(0, 'x', ['3']), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => memfd('x', -1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  const [a, b] = socketPair()
  closeFds([b])
  assert.throws(() => sendFds(a, 'x'), { code: 'EPIPE', errno: -32, syscall: 'sendmsg' })
  closeFds([a])
})

check(
  'node:fs on a received fd: works on Node and Bun; Deno refuses it (EBADF) and its /proc/self/fd path works',
  () => {
    const [a, b] = socketPair()
    const file = fileWith('through node:fs')
    sendFds(a, 'x', [file])
    const { fds } = recvFds(b)
    const buf = Buffer.alloc(64)
    if (runtime.name === 'deno') {
      // Deno's node:fs has its own table of the fds it opened: any other
      // number is EBADF (documented in README, "Runtimes"). Not a crash, and
      // the workaround reaches the same file.
      assert.throws(() => fs.readSync(fds[0], buf, 0, 64, 0), { code: 'EBADF' })
      assert.equal(fs.readFileSync(`/proc/self/fd/${fds[0]}`, 'utf8'), 'through node:fs')
    } else {
      assert.equal(buf.subarray(0, fs.readSync(fds[0], buf, 0, 64, 0)).toString(), 'through node:fs')
    }
    // The fd is an OS fd all the same: fdpass closes it on every runtime.
    closeFds([...fds, a, b])
    fs.closeSync(file)
  },
)

check('SyncSocket: a pair carries an fd each way', () => {
  const [a, b] = SyncSocket.pair()
  const one = fileWith('one')
  const two = fileWith('two')
  a.send('1', [one])
  b.send('2', [two])
  const atB = b.receive()
  const atA = a.receive()
  assert.equal(readReceived(atB.fds[0]), 'one')
  assert.equal(readReceived(atA.fds[0]), 'two')
  closeFds([...atA.fds, ...atB.fds])
  fs.closeSync(one)
  fs.closeSync(two)
  a.close()
  b.close()
})

checkEventLoop('FdSocket.pair: framed messages with fds both ways, on the event loop', async () => {
  const [a, b] = FdSocket.pair()
  const one = fileWith('from a')
  const two = fileWith('from b')
  await a.send('to b', [one])
  await b.send('to a', [two, two])
  const atB = await b.receive()
  const atA = await a.receive()
  assert.equal(atB.data.toString(), 'to b')
  assert.equal(atA.data.toString(), 'to a')
  assert.equal(atB.fds.length, 1)
  assert.equal(atA.fds.length, 2)
  assert.equal(readReceived(atB.fds[0]), 'from a')
  assert.equal(readReceived(atA.fds[1]), 'from b')
  closeFds([...atA.fds, ...atB.fds])
  fs.closeSync(one)
  fs.closeSync(two)
  a.close()
  await assert.rejects(b.receive(), { code: 'ERR_SOCKET_CLOSED' })
  b.close()
})

checkEventLoop(
  'listen/connect: an accepted connection carries fds both ways; close() removes the socket file',
  async () => {
    const where = path.join(tmp, 'server.sock')
    const server = await listen(where, { mode: 0o600 })
    const client = await connect(where)
    const peer = await server.accept()
    const one = memfd('to-server', 16)
    const two = fileWith('to client')
    await client.send('c', [one])
    await peer.send('s', [two])
    const atServer = await peer.receive()
    const atClient = await client.receive()
    assert.equal(target(atServer.fds[0]), target(one))
    assert.equal(readReceived(atClient.fds[0]), 'to client')
    assert.deepEqual(client.peerCredentials().uid, process.getuid())
    closeFds([...atServer.fds, ...atClient.fds, one])
    fs.closeSync(two)
    client.close()
    peer.close()
    server.close()
    assert.equal(fs.existsSync(where), false)
  },
)

checkEventLoop('a child process (same runtime) connects, receives an fd, reads it, and sends one back', async () => {
  const where = path.join(tmp, 'parent.sock')
  const server = await listen(where)
  const args =
    runtime.name === 'deno'
      ? ['run', '-A', path.join(__dirname, 'child-connect.cjs'), where]
      : [path.join(__dirname, 'child-connect.cjs'), where]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (s) => (out += s))
  child.stderr.on('data', (s) => (err += s))
  const exited = new Promise((resolve) => child.on('close', resolve))
  try {
    const socket = await server.accept({ signal: AbortSignal.timeout(20_000) })
    const file = fileWith('for the child')
    await socket.send('file', [file])
    fs.closeSync(file)
    const reply = await socket.receive({ signal: AbortSignal.timeout(20_000) })
    assert.equal(reply.data.toString(), 'read: for the child')
    assert.equal(reply.fds.length, 1)
    assert.equal(readReceived(reply.fds[0]), 'from the child')
    closeFds(reply.fds)
    socket.close()
  } finally {
    server.close()
  }
  const code = await exited
  assert.equal(code, 0, `child exited with ${code}: ${err}`)
  assert.match(out, /^child fd audit: ok$/m, out + err)
})

check(
  'a child process (same runtime) gets a socket as its fd 3, receives an fd on it (SyncSocket), and sends one back',
  async () => {
    const [mine, theirs] = SyncSocket.pair()
    const script = path.join(__dirname, 'child-fd3.cjs')
    const args = runtime.name === 'deno' ? ['run', '-A', script] : [script]
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', theirs.fd] })
    theirs.close() // the child has its own copy
    let out = ''
    let err = ''
    child.stdout.on('data', (s) => (out += s))
    child.stderr.on('data', (s) => (err += s))
    const exited = new Promise((resolve) => child.on('close', resolve))
    const file = fileWith('for the child')
    mine.send('file', [file])
    fs.closeSync(file)
    const reply = mine.receive() // blocks until the child answers
    mine.close()
    assert.equal(reply.data.toString(), 'read: for the child')
    assert.equal(reply.fds.length, 1)
    assert.equal(readReceived(reply.fds[0]), 'from the child')
    closeFds(reply.fds)
    const code = await exited
    assert.equal(code, 0, `child exited with ${code}: ${err}`)
    assert.match(out, /^child fd audit: ok$/m, out + err)
  },
)

// Deno keeps fds of every worker it has run (an eventfd, an epoll fd and a
// socket pair, with or without fdpass: checked with an empty worker), so
// there this case audits the fds it made itself by what they point at.
const workerAudit = runtime.name === 'deno' ? 'own' : 'all'
check(
  'a worker thread blocks in SyncSocket#receive while the main thread stays free (the way to wait without the event-loop sockets)',
  async () => {
    const { Worker } = require('node:worker_threads')
    const [a, b] = socketPair()
    const ours = [target(a), target(b)]
    const worker = new Worker(path.join(__dirname, 'worker.cjs'), { workerData: b })
    const got = new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    // The main thread's timers run while the worker waits for the message.
    await new Promise((resolve) => setTimeout(resolve, 100))
    const file = fileWith('for the worker')
    sendFds(a, 'hello', [file])
    fs.closeSync(file)
    const { text, fds } = await got
    assert.equal(text, 'hello')
    assert.equal(readReceived(fds[0]), 'for the worker')
    ours.push(target(fds[0]))
    closeFds([...fds, a])
    assert.equal(await exited, 0)
    if (workerAudit === 'own') {
      const left = [...openFds().values()].filter((what) => ours.includes(what))
      assert.deepEqual(left, [], 'the sockets and the received fd are closed')
    }
  },
  workerAudit,
)

if (eventLoop) {
  check(
    'a worker terminated with event-loop sockets open (receiving, idle, sending) ends cleanly and closes their fds',
    async () => {
      const { Worker } = require('node:worker_threads')
      const worker = new Worker(path.join(__dirname, 'worker-open-sockets.cjs'))
      const { targets, queued } = await new Promise((resolve, reject) =>
        worker.once('message', resolve).once('error', reject),
      )
      assert.equal(targets.length, 6)
      assert.ok(queued > 0, 'a send waits in a queue')
      const exited = new Promise((resolve) => worker.once('exit', resolve))
      await worker.terminate()
      await exited
      // The process is alive and its event loop runs (an abort in the
      // worker's teardown would have ended it).
      await new Promise((resolve) => setTimeout(resolve, 50))
      const left = [...openFds().values()].filter((what) => targets.includes(what))
      assert.deepEqual(left, [], "the worker's sockets are closed")
    },
    workerAudit,
  )
}

if (!eventLoop) {
  check(
    'Bun: the event-loop sockets refuse to start with ERR_FDPASS_UNSUPPORTED_RUNTIME (not a crash), leaving fds alone',
    async () => {
      const code = { code: 'ERR_FDPASS_UNSUPPORTED_RUNTIME', message: /uv_poll/ }
      assert.throws(() => FdSocket.pair(), code)
      const [a, b] = socketPair()
      assert.throws(() => FdSocket.from(a), code)
      assert.equal(fdKind(a), 'socket', "from() left the fd open and the caller's")
      closeFds([a, b])
      await assert.rejects(connect(path.join(tmp, 'none.sock')), code)
      await assert.rejects(listen(path.join(tmp, 'none.sock')), code)
      await assert.rejects(fdpass.bind(path.join(tmp, 'none.sock')), code)
      assert.equal(fs.existsSync(path.join(tmp, 'none.sock')), false)
    },
  )
}

async function main() {
  // Warm up what the runtime opens lazily and keeps: a child-process pipe
  // (Node), a socket pair that comes with the first child running the same
  // runtime (Deno: with or without fdpass), and libuv's spare /dev/null fd
  // that comes with stdout when it is a pipe.
  const sockets = () => [...openFds().values()].filter((what) => what.startsWith('socket:')).length
  const socketsBefore = sockets()
  const idle = runtime.name === 'deno' ? ['eval', ''] : ['-e', '']
  await new Promise((resolve) =>
    spawn(process.execPath, idle, { stdio: ['ignore', 'pipe', 'pipe'] }).on('close', resolve),
  )
  // Deno opens its pair a moment after the child has gone (up to a second
  // or so on a loaded machine): wait for it.
  for (let i = 0; runtime.name === 'deno' && sockets() < socketsBefore + 2 && i < 250; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  // And let the runtime close the child's stdio (Bun's are socket pairs,
  // closed a little later): wait until the fd table holds still for 300 ms.
  const shape = () => [...openFds()].join()
  for (let i = 0, still = 0, last = shape(); still < 15 && i < 250; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const now = shape()
    still = now === last ? still + 1 : 0
    last = now
  }
  process.stdout.write('')
  const start = openFds()
  let passed = 0
  let failed = 0
  const run = async ({ name, fn, audit }) => {
    const before = openFds()
    try {
      await fn()
      const leaks = audit === 'all' ? await auditFds(before) : []
      if (leaks.length) throw new Error(`fd audit: ${leaks.join('; ')}`)
      console.log(`ok - ${name}`)
      passed++
    } catch (e) {
      console.log(`not ok - ${name}: ${e && e.stack ? e.stack : e}`)
      failed++
    }
  }
  // The cases that audit only their own fds (the runtime keeps some of its
  // own, and closes them when it likes) run after the whole-suite audit.
  for (const c of cases) if (c.audit === 'all') await run(c)
  const leaks = await auditFds(start)
  if (leaks.length) {
    console.log(`not ok - whole-suite fd audit: ${leaks.join('; ')}`)
    failed++
  }
  for (const c of cases) if (c.audit !== 'all') await run(c)
  fs.rmSync(tmp, { recursive: true, force: true })
  console.log(`${runtime.name} ${runtime.version}: ${passed} passed, ${failed} failed`)
  process.exitCode = failed ? 1 : 0
}

main()
