// Zero-downtime handoff: a running HTTP server (A, this process) hands its
// listening socket to a new process (B, handoff-new.js) while a load
// generator keeps sending requests. B resumes with server.listen({ fd }),
// then A stops accepting and finishes its in-flight requests. Both processes
// share one listening socket for a moment, so no connection is refused.
//
//   node examples/handoff.js
'use strict'
const { spawn, spawnSync } = require('node:child_process')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')
const { auditFds, openFds } = require('./fd-audit')
const { startLoad } = require('./http-load')
const { FdSocket } = require('fdpass')

const log = (line) => console.log(`[A] ${line}`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const LOAD_BEFORE_MS = 300 // load on A alone before the handoff
const LOAD_AFTER_MS = 600 // load after A has stopped accepting
const CONCURRENCY = 4 // requests in flight at once
const MAX_REQUESTS = 50_000 // a bound, whatever the timings
let child // B

/** Who served a response: A (this process) or B (the child), checked by pid. */
function serverOf(status, body) {
  const match = /^hello from ([AB]) \(pid (\d+)\)\n$/.exec(body)
  const pid = match && (match[1] === 'A' ? process.pid : child?.pid)
  return status === 200 && match && Number(match[2]) === pid ? match[1] : undefined
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

  const server = http.createServer((req, res) => res.end(`hello from A (pid ${process.pid})\n`))
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  log(`pid ${process.pid} serving http://127.0.0.1:${port}/`)

  const load = startLoad(port, { concurrency: CONCURRENCY, maxRequests: MAX_REQUESTS, timeout: 3000, serverOf })
  log(`load generator started (${CONCURRENCY} at a time, no keep-alive)`)
  await sleep(LOAD_BEFORE_MS)

  // B gets one end of a socketpair as its fd 3; A keeps the other.
  const [a, b] = FdSocket.pair()
  child = spawn(process.execPath, [path.join(__dirname, 'handoff-new.js')], {
    stdio: ['ignore', 'inherit', 'inherit', b.fd],
  })
  b.close()
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
  log(`spawned B (pid ${child.pid}) with a socketpair end as its fd 3`)

  await a.send('listener', [server]) // a net.Server passes its listening fd
  log('sent B the listening socket')
  const { data } = await a.receive()
  if (data.toString() !== 'ready') throw new Error(`expected 'ready' from B, got ${JSON.stringify(data.toString())}`)
  log('B says it is serving: A stops accepting')
  // B holds the listening socket too, so it stays open; A's close() calls
  // back once A's own connections are done.
  await new Promise((resolve) => server.close(resolve))
  log('A stopped listening and finished its in-flight requests')

  await sleep(LOAD_AFTER_MS)
  const stats = await load.stop()
  console.log(
    `[load] ${stats.total} requests, ${stats.failed} failed: ${stats.by.A ?? 0} served by A, ${stats.by.B ?? 0} served by B`,
  )
  if (stats.firstError) console.log(`[load] first failure: ${stats.firstError}`)

  await a.send('stop')
  log('told B to stop')
  const status = await exited
  log(`B exited with ${typeof status === 'string' ? status : `code ${status}`}`)
  a.close()

  const clean = await auditFds(before, [], log)
  log(`fd audit: ${clean ? 'ok' : 'FAILED'}`)
  const ok = stats.failed === 0 && stats.by.A > 0 && stats.by.B > 0 && status === 0 && clean
  log(ok ? 'handoff: ok' : 'handoff: FAILED')
  process.exitCode = ok ? 0 : 1
}

// A bound on the whole run: never hang, whatever goes wrong.
setTimeout(() => {
  log('timed out')
  child?.kill()
  process.exit(2)
}, 20_000).unref()

main().catch((err) => {
  log(`error: ${err.stack ?? err}`)
  child?.kill()
  process.exit(1)
})
