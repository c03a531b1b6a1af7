// Preloaded (node --require) into every doc block docs.spec runs: the fds
// open when the block's process exits must be those open when it started, so
// a sample that leaks an fd (a FileHandle, a received fd, a socket) fails.
'use strict'
const fs = require('node:fs')

const FD_DIR = fs.existsSync('/proc/self/fd') ? '/proc/self/fd' : '/dev/fd'
const devNull = fs.statSync('/dev/null')

/** What an fd points at: the link target on Linux, device and inode elsewhere (as helpers/fd-audit.ts). */
function identify(fd) {
  if (FD_DIR === '/proc/self/fd') return fs.readlinkSync(`${FD_DIR}/${fd}`)
  const st = fs.fstatSync(Number(fd))
  if (st.dev === devNull.dev && st.ino === devNull.ino) return '/dev/null'
  return `dev ${st.dev} ino ${st.ino} mode ${st.mode.toString(8)}`
}

function openFds() {
  const fds = new Map()
  for (const name of fs.readdirSync(FD_DIR)) {
    try {
      fds.set(name, identify(name))
    } catch {
      // The directory's own fd, gone by now.
    }
  }
  return fds
}

const before = openFds()
process.on('exit', () => {
  const leaked = []
  for (const [fd, target] of openFds()) {
    // Node's own, opened lazily: the event loop's epoll and eventfd, and
    // /dev/null (libuv's placeholder for fds it reserves); and the C
    // library's: musl's resolver keeps /dev/urandom open from its first use
    // (a TCP listen or connect), as helpers/fd-audit.ts notes.
    const nodes = /^anon_inode:\[(eventpoll|eventfd)\]$|^\/dev\/(null|urandom)$/
    if (before.get(fd) !== target && !nodes.test(target)) leaked.push(`${fd} -> ${target}`)
  }
  if (leaked.length > 0) {
    process.stderr.write(`fd audit: the block left fds open: ${leaked.join(', ')}\n`)
    process.exitCode = 1
  }
})
