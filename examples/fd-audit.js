// Fd audit used by the examples: each process checks that the fds open when
// it ends are exactly those open when it started (nothing leaked, nothing
// closed by mistake), and prints "fd audit: ok".
'use strict'
const fs = require('node:fs')

const FD_DIR = fs.existsSync('/proc/self/fd') ? '/proc/self/fd' : '/dev/fd'

/** The open fds of this process: fd -> what it points at. */
function openFds() {
  const fds = new Map()
  for (const name of fs.readdirSync(FD_DIR)) {
    try {
      const fd = Number(name)
      const st = fs.fstatSync(fd)
      fds.set(fd, FD_DIR === '/proc/self/fd' ? fs.readlinkSync(`${FD_DIR}/${name}`) : `dev ${st.dev} ino ${st.ino}`)
    } catch {} // the directory's own fd, already closed
  }
  return fds
}

/**
 * Compares the open fds with `before`, except the fds in `gone` (which were
 * handed over and must be closed by now). Retries briefly: libuv closes
 * handles a tick after their close event. Logs each difference.
 */
async function auditFds(before, gone, log) {
  let diff = []
  for (let i = 0; i < 50; i++) {
    const after = openFds()
    diff = []
    for (const [fd, what] of after)
      if (before.get(fd) !== what || gone.includes(fd)) diff.push(`fd ${fd} -> ${what} left open`)
    for (const [fd, what] of before) if (!after.has(fd) && !gone.includes(fd)) diff.push(`fd ${fd} -> ${what} lost`)
    if (diff.length === 0) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  for (const line of diff) log(`fd audit: ${line}`)
  return false
}

module.exports = { openFds, auditFds }
