// A worker pool: the parent accepts TCP connections (paused, unread) and
// hands each one to a worker process over a Unix socket; the worker wraps
// the fd with new net.Socket({ fd }) and serves it. The parent then acts as
// the clients too, and checks every reply.
//
//   node examples/worker-pool.js
'use strict'
const { spawn, spawnSync } = require('node:child_process')
const net = require('node:net')
const path = require('node:path')
const { auditFds, openFds } = require('./fd-audit')
const { FdSocket } = require('fdpass')

const WORKERS = 2
const CLIENTS = 10
const log = (line) => console.log(`[parent] ${line}`)
const workers = []

/** One client: sends a line, returns the reply line. */
function ask(port, line) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(`${line}\n`))
    let reply = ''
    socket.setEncoding('utf8')
    // Only a guard against a hang: the first replies wait for the workers to start.
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no reply to ${JSON.stringify(line)}`)))
    socket.on('data', (chunk) => (reply += chunk))
    socket.on('end', () => resolve(reply.replace(/\n$/, '')))
    socket.on('error', reject)
  })
}

async function main() {
  // Warm up what Node opens lazily and keeps (the child-process signal pipe,
  // libuv's spare /dev/null fd for EMFILE on accept), then snapshot.
  spawnSync(process.execPath, ['-e', ''])
  await new Promise((resolve) =>
    net.createServer().listen(0, '127.0.0.1', function () {
      this.close(resolve)
    }),
  )
  const before = openFds()

  // Each worker gets one end of a socketpair as its fd 3.
  for (let i = 0; i < WORKERS; i++) {
    const [mine, theirs] = FdSocket.pair()
    const proc = spawn(process.execPath, [path.join(__dirname, 'worker-pool-worker.js')], {
      stdio: ['ignore', 'inherit', 'inherit', theirs.fd],
    })
    theirs.close()
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(signal ?? code)))
    workers.push({ sock: mine, proc, exited, served: 0 })
    log(`spawned worker ${i + 1} (pid ${proc.pid})`)
  }

  // Accept without reading (pauseOnConnect), pass the connection on, drop our copy.
  let next = 0
  let handOffFailures = 0
  const server = net.createServer({ pauseOnConnect: true }, async (socket) => {
    const i = next++ % WORKERS
    try {
      await workers[i].sock.send('conn', [socket])
      log(`connection from port ${socket.remotePort} -> worker ${i + 1}`)
    } catch (err) {
      handOffFailures++
      log(`could not hand over a connection: ${err.message}`)
    } finally {
      socket.destroy()
    }
  })
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  log(`listening on 127.0.0.1:${port}`)

  // Be the clients: every reply must be our line, uppercased, from a worker.
  const replies = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => ask(port, `hello ${i}`)))
  let bad = 0
  replies.forEach((reply, i) => {
    const match = /^HELLO (\d+) from pid (\d+)$/.exec(reply)
    const worker = match && Number(match[1]) === i && workers.find((w) => w.proc.pid === Number(match[2]))
    if (worker) worker.served++
    else {
      bad++
      log(`bad reply to "hello ${i}": ${JSON.stringify(reply)}`)
    }
  })
  log(`${CLIENTS} clients, ${CLIENTS - bad} correct replies`)
  workers.forEach((w, i) => log(`worker ${i + 1} (pid ${w.proc.pid}) served ${w.served}`))

  // Shut down: stop listening; closing our end tells each worker to finish.
  await new Promise((resolve) => server.close(resolve))
  for (const w of workers) w.sock.close()
  const statuses = await Promise.all(workers.map((w) => w.exited))
  statuses.forEach((status, i) =>
    log(`worker ${i + 1} exited with ${typeof status === 'string' ? status : `code ${status}`}`),
  )

  const clean = await auditFds(before, [], log)
  log(`fd audit: ${clean ? 'ok' : 'FAILED'}`)
  const ok =
    bad === 0 && handOffFailures === 0 && workers.every((w) => w.served > 0) && statuses.every((s) => s === 0) && clean
  log(ok ? 'worker pool: ok' : 'worker pool: FAILED')
  process.exitCode = ok ? 0 : 1
}

// A bound on the whole run: never hang, whatever goes wrong.
setTimeout(() => {
  log('timed out')
  for (const w of workers) w.proc.kill()
  process.exit(2)
}, 20_000).unref()

main().catch((err) => {
  log(`error: ${err.stack ?? err}`)
  for (const w of workers) w.proc.kill()
  process.exit(1)
})
