// A socket-activated service, started by systemd-socket-activate with two
// listening sockets named "http" and "admin": takes them by name (unsetting
// the LISTEN_* variables), checks what they are, serves one connection on
// "http" with a net.Server adopting the fd and one on "admin" with
// FdServer.from, then prints a JSON report with its own fd audit (the fds at
// the end are those at the start, less the two sockets it was given and has
// closed).
'use strict'
const fs = require('node:fs')
const net = require('node:net')
const { FdServer, socketInfo } = require('fdpass')
const { listenFds, listenFdsByName } = require('fdpass/systemd')
const { openFds } = require('./open-fds.js')

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

function cloexec(fd) {
  const flags = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/^flags:\s+([0-7]+)/m)
  return (parseInt(flags[1], 8) & 0o2000000) !== 0
}

async function main() {
  // libuv keeps a spare fd (its EMFILE reserve) from the first listen on:
  // open it now, so the audit below sees only what this program does.
  const warmUp = net.createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => warmUp.on('listening', resolve))
  await new Promise((resolve) => warmUp.close(resolve))
  const before = openFds()

  const byName = listenFdsByName({ unsetEnvironment: true })
  const [http] = byName.get('http') ?? []
  const [admin] = byName.get('admin') ?? []
  const report = {
    pid: process.pid,
    names: Object.fromEntries(byName),
    envLeft: Object.keys(process.env).filter((k) => k.startsWith('LISTEN_')),
    again: listenFds(),
    cloexec: [http, admin].map(cloexec),
    http: socketInfo(http),
    admin: socketInfo(admin),
    before,
  }

  // "http": a plain net.Server adopts the fd.
  const server = net.createServer((socket) => {
    socket.end(`hello from ${process.pid}`)
    socket.on('close', () => server.close())
  })
  server.listen({ fd: http })
  const httpDone = new Promise((resolve) => server.on('close', resolve))

  // "admin": fdpass's own server adopts it; one framed message per connection.
  const adminServer = FdServer.from(admin)
  const socket = await adminServer.accept()
  await socket.send(`admin of ${process.pid}`)
  socket.close()
  await adminServer.close()

  await httpDone
  // libuv closes the listening fd when the handle closes; give it a turn.
  await new Promise((resolve) => setImmediate(resolve))
  report.after = openFds()
  process.stdout.write(JSON.stringify(report) + '\n')
}
