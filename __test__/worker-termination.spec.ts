/**
 * A worker thread terminated at any point releases every fd fdpass held for
 * it: its sockets, queued sends, fds inside the frame decoder, and messages
 * read ahead that no receive() has taken yet. 50 terminations at random
 * points of a stream of messages that each carry an fd; the process's fd
 * table must come back exactly.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'

import { closeFds, FdSocket, socketPair } from 'fdpass'

import { openFds, withFdAudit } from './helpers/fd-audit.js'
import { openTempFile } from './helpers/files.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-term-'))

// The worker adopts its end, reads ahead (readAhead 16), and takes messages
// slowly. `taken[0]` is the fd of the message it is working on (-1: none):
// that one is the user's own, not fdpass's, once receive() has handed it over.
const source = `
  const { workerData, parentPort } = require('node:worker_threads')
  const { FdSocket, closeFds } = require(${JSON.stringify(require.resolve('fdpass'))})
  const taken = new Int32Array(workerData.taken)
  const sock = FdSocket.from(workerData.fd, { readAhead: 16, framing: workerData.framing })
  parentPort.postMessage('ready')
  ;(async () => {
    for (let i = 0; ; i++) {
      const m = await sock.receive()
      Atomics.store(taken, 0, m.fds[0])
      if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
      closeFds(m.fds)
      Atomics.store(taken, 0, -1)
    }
  })()
`

test.serial('50 workers terminated at random points leave exactly the fds there were', async (t) => {
  await withFdAudit(t, async () => {
    const file = openTempFile(tmp, 'x')
    const before = openFds().size
    let userHeld = 0
    for (let i = 0; i < 50; i++) {
      const [mine, theirs] = socketPair('stream')
      const taken = new SharedArrayBuffer(4)
      new Int32Array(taken)[0] = -1
      const framing = i % 2 === 0
      const worker = new Worker(source, { eval: true, workerData: { fd: theirs, taken, framing } })
      await once(worker, 'message')
      const sender = FdSocket.from(mine, { framing })
      const sends: Array<Promise<void>> = []
      for (let k = 0; k < 300; k++) sends.push(sender.send(`m${k}`, [file]).catch(() => {}))
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 40))
      await worker.terminate()
      // A message the worker's own code had in hand is its user's to close.
      const inHand = Atomics.load(new Int32Array(taken), 0)
      if (inHand >= 0) {
        closeFds([inHand])
        userHeld++
      }
      sender.close()
      await Promise.all(sends)
    }
    closeFds([file])
    const after = openFds().size
    t.log(`${userHeld} of 50 terminations came while the worker's code held a message`)
    t.is(after, before - 1, 'exactly the fds there were (less the file closed here)')
  })
})
