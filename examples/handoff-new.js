// The new server (B) of examples/handoff.js: receives the listening socket
// over fd 3, resumes serving with server.listen({ fd }), says 'ready', and
// serves until A says 'stop' (or goes away).
'use strict'
const http = require('node:http')
const net = require('node:net')
const { auditFds, openFds } = require('./fd-audit')
const { FdSocket, fdKind } = require('fdpass')

const log = (line) => console.log(`[B] ${line}`)

async function main() {
  // Warm up what Node opens lazily and keeps (libuv's spare /dev/null fd for
  // EMFILE on accept), then snapshot.
  await new Promise((resolve) =>
    net.createServer().listen(0, '127.0.0.1', function () {
      this.close(resolve)
    }),
  )
  const before = openFds()

  const sock = FdSocket.from(3) // adopt the socketpair end A gave us
  try {
    const { data, fds } = await sock.receive()
    if (data.toString() !== 'listener' || fds.length !== 1)
      throw new Error(`unexpected message ${JSON.stringify(data.toString())} with ${fds.length} fds`)
    const [fd] = fds
    log(`pid ${process.pid} received the listening socket as fd ${fd} (${fdKind(fd)})`)

    // The server now owns fd: server.close() closes it.
    const server = http.createServer((req, res) => res.end(`hello from B (pid ${process.pid})\n`))
    await new Promise((resolve, reject) => server.once('error', reject).listen({ fd }, resolve))
    log(`serving on it: http://127.0.0.1:${server.address().port}/`)
    await sock.send('ready')

    // Serve until A says 'stop'; if A goes away instead, receive() rejects.
    const { data: command } = await sock.receive()
    if (command.toString() !== 'stop') throw new Error(`unexpected command ${JSON.stringify(command.toString())}`)
    await new Promise((resolve) => server.close(resolve))
    log('stopped serving')
  } finally {
    sock.close()
  }
  const clean = await auditFds(before, [3], log)
  log(`fd audit: ${clean ? 'ok' : 'FAILED'}`)
  process.exitCode = clean ? 0 : 1
}

setTimeout(() => {
  log('timed out')
  process.exit(2)
}, 20_000).unref()

main().catch((err) => {
  log(`error: ${err.stack ?? err}`)
  process.exit(1)
})
