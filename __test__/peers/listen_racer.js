// A process that races others for a socket path (the stale-replacement
// test), run as a child. Commands on stdin, one per line:
//   race PATH AT   at the epoch millisecond AT (busy-waiting for it, so
//                  that the racers start together), listen(PATH,
//                  { replaceStale: true }); prints {"won":true} or
//                  {"won":false,"code":...,"message":...}
//   release        closes the server it won, if any; prints {"released":true}
//   exit           prints its fd audit and exits
'use strict'
const fs = require('node:fs')
const readline = require('node:readline')
const { listen } = require('fdpass')

const { openFds } = require('./open-fds.js')

let server
const print = (o) => process.stdout.write(`${JSON.stringify({ pid: process.pid, ...o })}\n`)

const lines = readline.createInterface({ input: process.stdin })
// After stdin and stdout are set up: Node opens some fds for them lazily.
print({ ready: true })
const before = openFds()
lines.on('line', async (line) => {
  const [command, path, at] = line.split(' ')
  if (command === 'race') {
    while (Date.now() < Number(at)) {
      // busy-wait for the start
    }
    try {
      server = await listen(path, { replaceStale: true })
      print({ won: true })
    } catch (err) {
      print({ won: false, code: err.code, message: err.message })
    }
  } else if (command === 'release') {
    await server?.close()
    server = undefined
    print({ released: true })
  } else if (command === 'exit') {
    lines.close()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const after = openFds()
    const what = (fd) => {
      try {
        return process.platform === 'linux' ? `${fd}=${fs.readlinkSync(`/proc/self/fd/${fd}`)}` : String(fd)
      } catch {
        return `${fd}=?`
      }
    }
    print({
      fdAuditOk: JSON.stringify(after) === JSON.stringify(before),
      before: before.map(what),
      after: after.map(what),
    })
    process.exit(0)
  }
})
