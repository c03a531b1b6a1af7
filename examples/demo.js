// The classic fd-passing program: a parent opens a file, reads the first 32
// bytes, and hands the open fd to a child process over a Unix socket. The
// child goes on reading from where the parent stopped (the file offset is
// shared).
//
//   node examples/demo.js [file]
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { closeFds, sendFds, socketPair } = require('fdpass')
const { auditFds, openFds } = require('./fd-audit')

// A file named on the command line is found from where the command was run:
// `npm run demo -- other.txt` runs this script in the package's directory,
// and npm passes the directory it was started from as INIT_CWD.
const file =
  process.argv[2] === undefined
    ? path.join(__dirname, 'hello.txt')
    : path.resolve(process.env.INIT_CWD ?? process.cwd(), process.argv[2])
const log = (line) => console.log(`[parent] ${line}`)

const fd = fs.openSync(file, 'r')
log(`opened ${path.relative(process.cwd(), file) || file} as fd ${fd}`)

const head = Buffer.alloc(32)
const n = fs.readSync(fd, head, 0, head.length, null)
log(`read the first ${n} bytes: ${JSON.stringify(head.subarray(0, n).toString())}`)

const [parentEnd, childEnd] = socketPair('stream')
log(`created a socketpair: fd ${parentEnd} (parent) and fd ${childEnd} (child)`)

const child = spawn(process.execPath, [path.join(__dirname, 'demo-child.js')], {
  stdio: ['ignore', 'inherit', 'inherit', childEnd],
})
closeFds([childEnd])
log(`spawned child pid ${child.pid} with the socket as its fd 3`)
// From here on, the file and our end of the socket are the only fds of ours
// that must go away: the fd audit at the end checks that nothing else changed.
const fdsBefore = openFds()

sendFds(parentEnd, 'F', [fd])
log(`sent fd ${fd} with a 1-byte message`)
closeFds([fd, parentEnd])
log('closed its own copies of the file and the socket')

child.on('exit', async (code, signal) => {
  log(`child exited with ${signal ?? `code ${code}`}`)
  const clean = await auditFds(fdsBefore, [fd, parentEnd], log)
  if (clean) log('fd audit: ok')
  process.exitCode = clean ? (code ?? 1) : 1
})
