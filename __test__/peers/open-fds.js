// The open fds of this process, sorted: what the Node test peers compare
// before and after their work (their fd audit).
'use strict'
const fs = require('node:fs')

const FD_DIR = process.platform === 'linux' ? '/proc/self/fd' : '/dev/fd'

function openFds() {
  return fs
    .readdirSync(FD_DIR)
    .map(Number)
    .filter((fd) => {
      try {
        fs.fstatSync(fd)
        return true
      } catch {
        return false // the directory's own fd, closed by now
      }
    })
    .sort((a, b) => a - b)
}

module.exports = { openFds }
