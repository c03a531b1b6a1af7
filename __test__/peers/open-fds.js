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

/** What each of `fds` points at now (its /proc/self/fd link; '' where there is none). */
function targetsOf(fds) {
  const targets = {}
  for (const fd of fds) {
    try {
      targets[fd] = fs.readlinkSync(`${FD_DIR}/${fd}`)
    } catch {
      targets[fd] = ''
    }
  }
  return targets
}

/** What the runtime's own event objects show as in /proc/self/fd. */
const RUNTIME_OWN = /^anon_inode:\[(eventfd|eventpoll|io_uring|timerfd|signalfd)\]$/

/**
 * Whether a peer's fds after its work are those it had before (less
 * `closedByIt`, the fds it was meant to close): no fd more. An fd missing
 * after is a fault too, unless `targets` (taken with `before`) shows it was
 * one of the runtime's own event objects (eventfd, eventpoll, io_uring,
 * timerfd, signalfd): libuv closes those by itself (seen: an eventfd gone
 * during a run under strace on Node 22), and fdpass never makes one.
 */
function sameFdsAs(before, targets, after, closedByIt = []) {
  const expected = before.filter((fd) => !closedByIt.includes(fd))
  const extra = after.filter((fd) => !expected.includes(fd))
  const missing = expected.filter((fd) => !after.includes(fd))
  return extra.length === 0 && missing.every((fd) => RUNTIME_OWN.test(targets[fd] ?? ''))
}

module.exports = { openFds, targetsOf, sameFdsAs }
