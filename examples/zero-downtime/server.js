// A zero-downtime HTTP server. Each generation of it:
//   1. takes the listening socket from the generation before (takeListeners),
//      or, at a first start (nobody serves the handoff path), listens afresh;
//   2. says ready(): the old generation stops accepting and drains;
//   3. serves the listener to the next generation (serveListeners) and, once
//      that one has taken it, stops accepting, finishes its requests, exits.
// Start the next generation the same way (a supervisor, or run.js here).
//
//   HANDOFF_SOCKET=/run/app/handoff.sock GENERATION=1 node examples/zero-downtime/server.js
'use strict'
const http = require('node:http')
const net = require('node:net')
const { serveListeners, takeListeners } = require('fdpass')
const { auditFds, openFds } = require('../fd-audit')

const HANDOFF = process.env.HANDOFF_SOCKET
const GENERATION = process.env.GENERATION ?? '1'
const log = (line) => console.log(`[gen ${GENERATION}] ${line}`)

async function main() {
  if (!HANDOFF) throw new Error('set HANDOFF_SOCKET to the handoff socket path')
  // Warm up what Node opens lazily and keeps (libuv's spare fd for EMFILE on
  // accept), then snapshot: at the end this process must have exactly these fds.
  await new Promise((resolve) =>
    net.createServer().listen(0, '127.0.0.1', function () {
      this.close(resolve)
    }),
  )
  const before = openFds()

  const server = http.createServer((req, res) => res.end(`generation ${GENERATION} pid ${process.pid}\n`))
  let taken
  try {
    taken = await takeListeners(HANDOFF)
  } catch (err) {
    // ENOENT / ECONNREFUSED: nobody serves the handoff path: a first start.
    if (err.code !== 'ENOENT' && err.code !== 'ECONNREFUSED') throw err
  }
  if (taken) {
    await taken.get('web').listen(server)
    log(`took over http://127.0.0.1:${server.address().port}/ from the previous generation`)
    await taken.ready() // the previous generation stops accepting now
    taken.close()
  } else {
    await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
    log(`listening afresh on http://127.0.0.1:${server.address().port}/`)
  }
  log(`serving (pid ${process.pid})`)

  // replaceStale: a generation that crashed may have left its socket file.
  const handoff = await serveListeners(HANDOFF, { web: server }, { replaceStale: true })
  const stop = async (why) => {
    log(why)
    // Drain then close: close() stops accepting and calls back once the
    // requests in progress are done; the next generation holds the socket.
    await new Promise((resolve) => server.close(resolve))
    await handoff.close()
    const clean = await auditFds(before, [], log)
    log(`drained; fd audit: ${clean ? 'ok' : 'FAILED'}`)
    process.exitCode = clean ? 0 : 1
  }
  process.once('SIGTERM', () => stop('SIGTERM: stopping').catch(fail))
  const result = await handoff.taken().catch(() => undefined) // rejects when stopped by SIGTERM
  if (result) await stop(`the next generation (pid ${result.peer.pid}) serves: stopping`)
}

function fail(err) {
  log(`error: ${err.stack ?? err}`)
  process.exit(1)
}

main().catch(fail)
