// A hit counter that survives restarts without closing its socket or losing
// its count: it keeps its listening socket and a memfd holding its state in
// systemd's fd store, and gets both back by name when it starts again.
//
//   node examples/systemd-fdstore.js [SOCKET_PATH]
//
// As a systemd service (a user unit here; a system unit works the same):
//
//   [Service]
//   Type=notify
//   ExecStart=/usr/bin/node /path/to/examples/systemd-fdstore.js /run/user/1000/hits.sock
//   FileDescriptorStoreMax=2
//
// `systemctl --user restart hits` then keeps every connection attempt (they
// wait in the listener's backlog) and the count. Outside systemd it serves
// one request to itself, says that the fd store was not available, and exits.
'use strict'
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { memfd, socketInfo } = require('fdpass')
const { listenFdsByName, notify, ready, storeFds, watchdog, watchdogInterval } = require('fdpass/systemd')

const log = (line) => console.log(`[fdstore] pid ${process.pid}: ${line}`)
const socketPath = process.argv[2] ?? path.join(os.tmpdir(), `fdpass-hits-${process.pid}.sock`)

// What the service manager kept for us, if anything (unset: our children see nothing).
const stored = listenFdsByName({ unsetEnvironment: true })
let [listenFd] = stored.get('http') ?? []
let [stateFd] = stored.get('state') ?? []

// Never trust an fd blindly: it must be a listening stream socket.
if (listenFd !== undefined) {
  const info = socketInfo(listenFd)
  if (info.type !== 'stream' || !info.listening)
    throw new Error(`the stored "http" fd is not a listener: ${JSON.stringify(info)}`)
  const where = info.local.kind === 'path' ? info.local.path : info.local.kind
  log(`listener from the fd store (fd ${listenFd}, ${info.family} ${info.type} on ${where})`)
}

// The state lives in a memfd: it outlives this process as long as the store holds it.
const state = { hits: 0 }
if (stateFd !== undefined) {
  const buf = Buffer.alloc(fs.fstatSync(stateFd).size)
  fs.readSync(stateFd, buf, 0, buf.length, 0)
  Object.assign(state, JSON.parse(buf.toString()))
  log(`state from the fd store: ${state.hits} hits so far`)
} else {
  stateFd = memfd('hits', 0)
}
function save() {
  const bytes = Buffer.from(JSON.stringify(state))
  fs.writeSync(stateFd, bytes, 0, bytes.length, 0)
  fs.ftruncateSync(stateFd, bytes.length)
}
save()

const server = http.createServer((req, res) => {
  state.hits += 1
  save()
  res.end(`hits=${state.hits} pid=${process.pid}\n`)
})

if (listenFd !== undefined) server.listen({ fd: listenFd })
else {
  fs.rmSync(socketPath, { force: true })
  server.listen(socketPath)
}

server.on('listening', () => {
  if (listenFd === undefined) {
    // First start: hand both to the store. The manager keeps its own copies.
    listenFd = server._handle.fd
    const kept = storeFds('http', [listenFd]) && storeFds('state', [stateFd])
    log(kept ? 'stored the listener and the state in the fd store' : 'not run by a service manager: no fd store')
  }
  ready()
  notify(`STATUS=Serving, ${state.hits} hits so far`)
  const interval = watchdogInterval()
  if (interval !== undefined) setInterval(watchdog, interval / 2).unref()
  log(`serving on ${socketPath}`)
  if (process.env.NOTIFY_SOCKET === undefined) selfTest()
})

// Outside systemd: one request to ourselves, then a clean exit.
function selfTest() {
  http.get({ socketPath, path: '/' }, (res) => {
    let body = ''
    res.on('data', (chunk) => (body += chunk))
    res.on('end', () => {
      log(`answered ${body.trim()}`)
      server.close(() => {
        fs.closeSync(stateFd)
        log('closed cleanly')
      })
    })
  })
}

process.on('SIGTERM', () => {
  // systemctl stop/restart: the store keeps the listener, so just go.
  log('SIGTERM: exiting (the fd store keeps the listener and the state)')
  process.exit(0)
})
