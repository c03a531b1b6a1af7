// A Type=notify service run by a real `systemd --user` with
// FileDescriptorStoreMax=: the first generation creates a listening socket
// (at FDPASS_LISTEN) and a memfd holding state, stores both in the fd store
// by name and reports ready; every later generation gets them back with
// listenFdsByName, checks them, adopts the listener and serves from it. Each
// connection is answered with "<generation> <pid> <state>". What each
// generation saw is written to FDPASS_REPORT_DIR/<pid>.json.
'use strict'
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { memfd, socketInfo } = require('fdpass')
const { listenFdsByName, ready, storeFds } = require('fdpass/systemd')

const reportDir = process.env.FDPASS_REPORT_DIR
const byName = listenFdsByName({ unsetEnvironment: true })
const [listener] = byName.get('http') ?? []
const [state] = byName.get('state') ?? []
const report = { pid: process.pid, names: Object.fromEntries(byName) }

let server
let content
if (listener === undefined) {
  report.generation = 1
  server = net.createServer().listen(process.env.FDPASS_LISTEN)
  content = 'counter=41'
} else {
  report.generation = 2
  report.listener = socketInfo(listener)
  const buf = Buffer.alloc(64)
  content = buf.subarray(0, fs.readSync(state, buf, 0, 64, 0)).toString()
  report.stateFd = fs.readlinkSync(`/proc/self/fd/${state}`)
  server = net.createServer().listen({ fd: listener })
}
report.state = content

server.on('connection', (socket) => socket.end(`${report.generation} ${process.pid} ${content}`))
server.on('listening', () => {
  if (report.generation === 1) {
    const fd = memfd('fdpass-state', 0)
    fs.writeSync(fd, content, 0)
    report.stored = [storeFds('http', [server._handle.fd]), storeFds('state', [fd])]
    fs.closeSync(fd)
  }
  // The report first: systemctl returns once READY=1 arrives, and the test reads it then.
  report.ready = true
  fs.writeFileSync(path.join(reportDir, `${process.pid}.json`), JSON.stringify(report))
  if (!ready()) throw new Error('NOTIFY_SOCKET is not set: not run by a service manager')
})
