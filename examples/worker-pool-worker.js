// A worker of examples/worker-pool.js: receives accepted TCP connections over
// fd 3, wraps each with new net.Socket({ fd }) and answers one line,
// uppercased, with its pid. Ends when the parent closes its end of fd 3.
'use strict'
const fs = require('node:fs')
const net = require('node:net')
const { auditFds, openFds } = require('./fd-audit')
const { FdSocket, fdKind } = require('fdpass')

const log = (line) => console.log(`[worker ${process.pid}] ${line}`)

/** Answers one line on a connection, then closes it. */
function serve(fd) {
  return new Promise((resolve) => {
    // The net.Socket owns the fd from here: destroying it closes the fd.
    const conn = new net.Socket({ fd })
    let line = ''
    conn.setEncoding('utf8')
    conn.setTimeout(5000, () => conn.destroy())
    conn.on('data', (chunk) => {
      line += chunk
      if (line.includes('\n')) conn.end(`${line.split('\n')[0].toUpperCase()} from pid ${process.pid}\n`)
    })
    conn.on('error', (err) => log(`connection error: ${err.message}`))
    conn.on('close', () => resolve())
  })
}

async function main() {
  // Warm up what Node opens lazily and keeps (libuv's spare /dev/null fd),
  // then snapshot.
  await new Promise((resolve) =>
    net.createServer().listen(0, '127.0.0.1', function () {
      this.close(resolve)
    }),
  )
  const before = openFds()

  const sock = FdSocket.from(3)
  const connections = []
  // One message per connection; the loop ends when the parent closes its end.
  for await (const { data, fds } of sock) {
    if (data.toString() !== 'conn' || fds.length !== 1 || fdKind(fds[0]) !== 'socket') {
      log(`unexpected message ${JSON.stringify(data.toString())} with ${fds.length} fds`)
      for (const fd of fds) fs.closeSync(fd)
      process.exitCode = 1
      continue
    }
    connections.push(serve(fds[0]))
  }
  sock.close()
  await Promise.all(connections)
  log(`served ${connections.length} connections`)

  const clean = await auditFds(before, [3], log)
  log(`fd audit: ${clean ? 'ok' : 'FAILED'}`)
  if (!clean) process.exitCode = 1
}

setTimeout(() => {
  log('timed out')
  process.exit(2)
}, 20_000).unref()

main().catch((err) => {
  log(`error: ${err.stack ?? err}`)
  process.exit(1)
})
