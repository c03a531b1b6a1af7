// The child of the smoke suite's connect case: connects to the
// parent's socket, reads the file whose fd it receives, and sends back a
// memfd with its own text. Prints "child fd audit: ok" if it ends with the
// fds it started with.
'use strict'
const { closeFds, connect, memfd } = require('../..')
const { auditFds, openFds, readReceived, writeReceived } = require('./support.cjs')

async function main() {
  const before = openFds()
  const socket = await connect(process.argv[process.argv.length - 1])
  const { fds } = await socket.receive({ signal: AbortSignal.timeout(20_000) })
  const text = readReceived(fds[0])
  closeFds(fds)
  const shm = memfd('from-child', 'from the child'.length)
  writeReceived(shm, 'from the child')
  await socket.send(`read: ${text}`, [shm])
  closeFds([shm])
  socket.close()
  const leaks = await auditFds(before)
  console.log(leaks.length ? `child fd audit: ${leaks.join('; ')}` : 'child fd audit: ok')
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
