// The new process of a listener handoff test: takes the listeners served at
// argv[2], adopts each by its kind, says ready, serves until stdin says
// 'stop', then audits its own fds. Prints one JSON line per event.
// argv[3] (mode): 'serve' (default); 'exit-before-ready' takes, then exits
// without ready(); 'take-only' takes, reports, closes everything and exits
// (the failure tests use it to see the error takeListeners gives here).
'use strict'
const dgram = require('node:dgram')
const http = require('node:http')
const net = require('node:net')
const readline = require('node:readline')
const { takeListeners } = require('fdpass')
const { openFds } = require('./open-fds')

const out = (event) => process.stdout.write(`${JSON.stringify(event)}\n`)
const [, , path, mode = 'serve'] = process.argv

async function warmUp() {
  // What Node opens lazily and keeps: libuv's spare fd for EMFILE on accept,
  // the resolver; open them now so that they are part of "before".
  await new Promise((resolve) =>
    net.createServer().listen(0, '127.0.0.1', function () {
      this.close(resolve)
    }),
  )
}

async function main() {
  await warmUp()
  const before = openFds()
  let taken
  try {
    taken = await takeListeners(path, { timeout: 10_000 })
  } catch (err) {
    out({ event: 'error', code: err.code, message: err.message })
    await audit(before)
    return
  }
  out({
    event: 'taken',
    listeners: taken.listeners.map((l) => ({ ...l.metadata })),
    infos: taken.listeners.map(({ info }) => [info.family, info.type, info.listening]),
  })
  if (mode === 'take-only') {
    taken.close()
    await audit(before)
    return
  }
  if (mode === 'exit-before-ready') process.exit(3)
  const closers = []
  for (const listener of taken) {
    const reply = `new ${process.pid} ${listener.name}`
    if (listener.kind === 'tcp') {
      const server = http.createServer((req, res) => res.end(reply))
      await listener.listen(server)
      closers.push(() => new Promise((resolve) => server.close(resolve)))
    } else if (listener.kind === 'unix') {
      const server = net.createServer((socket) => socket.end(reply))
      await listener.listen(server)
      closers.push(() => new Promise((resolve) => server.close(resolve)))
    } else if (listener.kind === 'udp') {
      const socket = dgram.createSocket(listener.metadata.family === 'IPv6' ? 'udp6' : 'udp4')
      await listener.bind(socket)
      socket.on('message', (msg, rinfo) => socket.send(reply, rinfo.port, rinfo.address))
      closers.push(() => new Promise((resolve) => socket.close(resolve)))
    } else if (listener.kind === 'fdpass') {
      const server = listener.toFdServer()
      ;(async () => {
        for await (const socket of server) {
          await socket.send(reply)
          socket.close()
        }
      })()
      closers.push(() => server.close())
    }
  }
  await taken.ready()
  taken.close() // whatever was not adopted
  out({ event: 'ready' })
  const lines = readline.createInterface({ input: process.stdin })
  for await (const line of lines) if (line === 'stop') break
  lines.close()
  for (const close of closers) await close()
  await audit(before)
}

async function audit(before) {
  const want = JSON.stringify(before)
  let now = ''
  for (let i = 0; i < 100; i++) {
    now = JSON.stringify(openFds())
    if (now === want) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  out({ event: 'audit', ok: now === want, before, after: JSON.parse(now) })
}

main().catch((err) => {
  out({ event: 'crash', message: String(err && err.stack) })
  process.exitCode = 1
})
