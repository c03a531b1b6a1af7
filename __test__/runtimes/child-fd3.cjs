// The child of the smoke suite's fd-3 case: takes the socket its parent put
// at fd 3 (SyncSocket: blocking, no event loop needed, so it runs on every
// runtime), reads the file whose fd it receives, and sends back a memfd with
// its own text. Prints "child fd audit: ok" if it ends with the fds it
// started with, less fd 3.
'use strict'
const { closeFds, memfd, SyncSocket } = require('../..')
const { auditFds, openFds, readReceived, writeReceived } = require('./support.cjs')

async function main() {
  const before = openFds()
  before.delete(3) // handed over: closed by socket.close() below
  const socket = SyncSocket.from(3)
  const { fds } = socket.receive()
  const text = readReceived(fds[0])
  closeFds(fds)
  const shm = memfd('from-child', 'from the child'.length)
  writeReceived(shm, 'from the child')
  socket.send(`read: ${text}`, [shm])
  closeFds([shm])
  socket.close()
  const leaks = await auditFds(before)
  console.log(leaks.length ? `child fd audit: ${leaks.join('; ')}` : 'child fd audit: ok')
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
