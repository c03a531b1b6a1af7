// The worker of the smoke suite's termination case: opens event-loop
// sockets (one pair waiting to receive, one idle, one with a send queued
// behind a full buffer), posts what their fds point at, and is terminated
// with all of them open.
'use strict'
const fs = require('node:fs')
const { parentPort } = require('node:worker_threads')
const { FdSocket } = require('../..')

const [a, b] = FdSocket.pair()
b.receive().catch(() => {})
const [c, d] = FdSocket.pair('stream')
const [e, f] = FdSocket.pair()
globalThis.kept = [a, b, c, d, e, f]
// A send that cannot go through until f reads: it waits in e's queue.
for (let i = 0; i < 64; i++) e.send(Buffer.alloc(64 * 1024)).catch(() => {})
const targets = globalThis.kept.map((s) => fs.readlinkSync(`/proc/self/fd/${s.fd}`))
parentPort.postMessage({ targets, queued: e.writableLength })
