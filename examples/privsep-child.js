// The unprivileged child of examples/privsep.js: shows that it cannot open
// the file by name, then reads it through the fd the parent sends on fd 3.
//
//   node privsep-child.js <file> denied|allowed
'use strict'
const fs = require('node:fs')
const { auditFds, openFds } = require('./fd-audit')
const { FdSocket, fdKind } = require('fdpass')

const [file, expected] = process.argv.slice(2)
const log = (line) => console.log(`[child]  ${line}`)

async function main() {
  // Warm up what Node opens lazily and keeps (libuv's spare /dev/null fd that
  // comes with its first stream: stdout when it is a pipe), then snapshot.
  process.stdout.write('')
  const before = openFds()
  log(`running as uid ${process.getuid()}, gid ${process.getgid()}`)

  // 1. By name: the kernel checks our (dropped) credentials.
  let denied
  try {
    fs.closeSync(fs.openSync(file, 'r'))
    denied = false
    log(`open(${file}) succeeded`)
  } catch (err) {
    denied = err.code === 'EACCES'
    log(`open(${file}) failed: ${err.code}`)
  }
  if (denied !== (expected === 'denied')) throw new Error(`expected open() to be ${expected}`)

  // 2. Through the fd: access was checked when the parent opened it.
  const sock = FdSocket.from(3)
  try {
    const { data, fds } = await sock.receive()
    if (data.toString() !== 'secret' || fds.length !== 1) throw new Error(`unexpected message with ${fds.length} fds`)
    const [fd] = fds
    log(`received fd ${fd} (${fdKind(fd)})`)
    const text = fs.readFileSync(fd, 'utf8').replace(/\n$/, '')
    fs.closeSync(fd)
    log(`read through it: ${JSON.stringify(text)}`)
    await sock.send(text)
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
