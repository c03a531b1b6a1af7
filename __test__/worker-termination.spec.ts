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
// slowly (two workers in three) or as fast as they come. `state[0]` is the fd of the message its code is working on (-1:
// none): that one is the user's own, not fdpass's. `state[1]` is 1 while it
// awaits a receive(): a receive waits only when nothing is queued, and the
// message that resolves it is the user's from then on, even if the worker
// is stopped before its code resumes (the one gap a promise leaves).
const source = `
  const { workerData, parentPort } = require('node:worker_threads')
  const { FdSocket, closeFds } = require(${JSON.stringify(require.resolve('fdpass'))})
  const state = new Int32Array(workerData.state)
  const sock = FdSocket.from(workerData.fd, { readAhead: 16, framing: workerData.framing })
  parentPort.postMessage('ready')
  ;(async () => {
    for (let i = 0; ; i++) {
      Atomics.store(state, 1, 1)
      const m = await sock.receive()
      Atomics.store(state, 0, m.fds[0])
      Atomics.store(state, 1, 0)
      if (workerData.slow && i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
      closeFds(m.fds)
      Atomics.store(state, 0, -1)
    }
  })()
`

/** Whether `fd` is open on the file with inode `ino`. */
function isOpenAs(fd: number, ino: number): boolean {
  try {
    return fs.fstatSync(fd).ino === ino
  } catch {
    return false
  }
}

test.serial('50 workers terminated at random points leave exactly the fds there were', async (t) => {
  await withFdAudit(t, async () => {
    const file = openTempFile(tmp, 'x')
    const fileIno = fs.fstatSync(file).ino
    const before = openFds()
    let userHeld = 0
    for (let i = 0; i < 50; i++) {
      const [mine, theirs] = socketPair('stream')
      const state = new SharedArrayBuffer(8)
      new Int32Array(state)[0] = -1
      const framing = i % 2 === 0
      const worker = new Worker(source, { eval: true, workerData: { fd: theirs, state, framing, slow: i % 3 !== 0 } })
      await once(worker, 'message')
      const sender = FdSocket.from(mine, { framing })
      const sends: Array<Promise<void>> = []
      for (let k = 0; k < 300; k++) sends.push(sender.send(`m${k}`, [file]).catch(() => {}))
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 40))
      await worker.terminate()
      // The message the worker's own code had in hand is its user's to close
      // (unless the worker was stopped right after closing it itself); so is
      // the one that had just resolved its waiting receive(), if it was
      // waiting. Any other fd of the file still open is a leak.
      const [inHand, waiting] = new Int32Array(state)
      const left = [...openFds().keys()].filter((fd) => fd !== file && isOpenAs(fd, fileIno))
      const users = left.filter((fd) => fd === inHand)
      if (waiting === 1 && left.length - users.length === 1) users.push(...left.filter((fd) => fd !== inHand))
      closeFds(users)
      userHeld += users.length
      sender.close()
      await Promise.all(sends)
    }
    closeFds([file])
    // The last worker's thread may still be letting go of its event loop.
    let after = openFds()
    for (let i = 0; i < 100 && after.size !== before.size - 1; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      after = openFds()
    }
    t.log(`${userHeld} of 50 terminations came while the worker's code held a message`)
    const extra = [...after].filter(([fd, what]) => before.get(fd) !== what).map(([fd, what]) => `${fd} -> ${what}`)
    t.is(
      after.size,
      before.size - 1,
      `exactly the fds there were (less the file closed here); new: ${extra.join(', ')}`,
    )
  })
})
