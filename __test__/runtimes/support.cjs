// What the runtime smoke suite and its child share: the runtime's name, fd
// audits through /proc/self/fd, and reading or writing an fd that fdpass
// gave (received, memfd) in a way each runtime supports.
'use strict'
const fs = require('node:fs')

/** Which runtime runs this: 'deno', 'bun' or 'node', and its version. */
const runtime =
  typeof globalThis.Deno !== 'undefined'
    ? { name: 'deno', version: globalThis.Deno.version.deno }
    : typeof globalThis.Bun !== 'undefined'
      ? { name: 'bun', version: globalThis.Bun.version }
      : { name: 'node', version: process.versions.node }

/** The open fds of this process: fd -> what it points at. */
function openFds() {
  const fds = new Map()
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      fds.set(Number(name), fs.readlinkSync(`/proc/self/fd/${name}`))
    } catch {} // the directory's own fd, closed by now
  }
  return fds
}

/** The differences from `before`, after giving the event loop up to 2 s to close what it closes late. */
async function auditFds(before) {
  let diff = []
  for (let i = 0; i < 100; i++) {
    const after = openFds()
    diff = []
    for (const [fd, what] of after) if (before.get(fd) !== what) diff.push(`fd ${fd} -> ${what} leaked`)
    for (const [fd, what] of before) if (!after.has(fd)) diff.push(`fd ${fd} -> ${what} lost`)
    if (diff.length === 0) return diff
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return diff
}

/**
 * The contents of an fd fdpass gave, from offset 0. Deno's node:fs knows
 * only the fds it opened itself (EBADF for any other number), so there the
 * fd is reached through its /proc/self/fd path: a new open of the same file
 * (or memfd), fine for reading and writing its contents, though it has its
 * own offset and flags. Node and Bun read the fd itself.
 */
function readReceived(fd) {
  if (runtime.name === 'deno') return fs.readFileSync(`/proc/self/fd/${fd}`, 'utf8')
  const buf = Buffer.alloc(4096)
  return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString()
}

/** Writes `text` at offset 0 of an fd fdpass gave (see readReceived). */
function writeReceived(fd, text) {
  if (runtime.name !== 'deno') return void fs.writeSync(fd, text, 0)
  const own = fs.openSync(`/proc/self/fd/${fd}`, 'r+')
  try {
    fs.writeSync(own, text, 0)
  } finally {
    fs.closeSync(own)
  }
}

module.exports = { auditFds, openFds, readReceived, runtime, writeReceived }
