// The child half of examples/demo.js: receives an open fd on fd 3 and reads
// on from the shared file offset.
'use strict'
const fs = require('node:fs')
const { closeFds, recvFds } = require('fdpass')
const { auditFds, openFds } = require('./fd-audit')

const log = (line) => console.log(`[child]  ${line}`)
// Set stdout up first: on a pipe, libuv opens a spare fd with it, which is
// not ours to audit.
void process.stdout
const fdsBefore = openFds()

const { data, fds } = recvFds(3, { maxFds: 1 })
closeFds([3])
if (fds.length !== 1) {
  log(`expected 1 fd, got ${fds.length}`)
  process.exit(1)
}
const [fd] = fds
log(`received ${JSON.stringify(data.toString())} and fd ${fd}`)

// Where the shared offset stands (Linux shows it in /proc; macOS does not).
let position = 'the shared offset'
try {
  position = `byte ${/^pos:\s+(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))[1]}`
} catch {}
const chunks = []
const buf = Buffer.alloc(64 * 1024)
for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) chunks.push(Buffer.from(buf.subarray(0, n)))
closeFds([fd])
log(`read on from ${position}, where the parent stopped:`)
for (const line of Buffer.concat(chunks).toString().replace(/\n$/, '').split('\n')) console.log(`[child]  | ${line}`)
auditFds(fdsBefore, [3], log).then((clean) => {
  log(clean ? 'fd audit: ok' : 'fd audit: FAILED')
  log('done')
  process.exitCode = clean ? 0 : 1
})
