// A Node peer for the FdSocket tests, run as a child process with its
// socket on fd 3 (or a path to connect to). Modes:
//   stream-receive N   receive N framed messages, check each (payload i, i % 4
//                      fds, each fd a file holding "fd <i>.<j>"), close the fds
//   partial-then-die   send 2 whole messages, then a frame header promising
//                      more bytes than follow (with 1 fd), then SIGKILL itself
//   connect PATH       connect to PATH, send 'hello', wait for 'bye'
//   idle-receive REF   wait on a receive, ref'd ('ref') or unref'd ('unref')
// Prints one JSON line: results and whether its fd table came back.
'use strict'
const fs = require('node:fs')
const { FdSocket, connect, sendFds, closeFds } = require('fdpass')

const { openFds, sameFdsAs, targetsOf } = require('./open-fds.js')

async function main() {
  const [mode, arg] = process.argv.slice(2)
  const before = openFds()
  const beforeTargets = targetsOf(before)
  const report = {}
  if (mode === 'stream-receive') {
    const n = Number(arg)
    const sock = FdSocket.from(3)
    let i = 0
    for await (const { data, fds } of sock) {
      const [index, fill] = data.toString().split(':')
      if (Number(index) !== i) throw new Error(`message ${i} arrived as ${index}`)
      if (fds.length !== i % 4) throw new Error(`message ${i} has ${fds.length} fds`)
      if (fill.length !== (i * 37) % 3000) throw new Error(`message ${i} has a wrong payload length`)
      fds.forEach((fd, j) => {
        const buf = Buffer.alloc(64)
        const text = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString()
        if (text !== `fd ${i % 16}.${j}`) throw new Error(`message ${i} fd ${j} reads ${text}`)
      })
      closeFds(fds)
      i++
      // Read slowly at first, so that the sender's queue fills up.
      if (i < 200 && i % 50 === 0) await new Promise((r) => setTimeout(r, 20))
      if (i === n) break
    }
    report.received = i
    sock.close()
  } else if (mode === 'partial-then-die') {
    const sock = FdSocket.from(3)
    await sock.send('one')
    await sock.send('two', [0])
    // A header for a 100-byte payload with 1 fd, followed by only 10 bytes.
    const header = Buffer.alloc(8)
    header.writeUInt32LE(100, 0)
    header.writeUInt16LE(1, 4)
    sendFds(sock.fd, Buffer.concat([header, Buffer.alloc(10, 120)]), [0])
    process.kill(process.pid, 'SIGKILL')
  } else if (mode === 'connect') {
    const sock = await connect(arg)
    await sock.send('hello')
    const bye = await sock.receive()
    report.got = bye.data.toString()
    sock.close()
  } else if (mode === 'idle-receive') {
    const sock = FdSocket.from(3)
    if (arg === 'unref') sock.unref()
    sock.receive().then(
      () => {},
      () => {},
    )
    console.log(JSON.stringify({ waiting: true }))
    return
  } else {
    throw new Error(`unknown mode ${mode}`)
  }
  // A closed FdSocket's fd is released once the event loop lets go of it.
  await new Promise((resolve) => setTimeout(resolve, 20))
  const after = openFds()
  report.fdAuditOk = sameFdsAs(before, beforeTargets, after, [3])
  report.fdsBefore = before
  report.fdsAfter = after
  console.log(JSON.stringify(report))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
