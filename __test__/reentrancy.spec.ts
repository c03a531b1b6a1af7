/**
 * User code that runs while a call reads its fds (an `fd` getter, a Proxy
 * array) may itself send or close fds through the same shared scratch. The
 * outer call must still send (or close) exactly the fds its caller passed.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'

import { closeFds, FdSocket, recvFds, sendFds, socketPair } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'

const dir = os.tmpdir()

/** The contents of each fd, read from its start: what a peer can tell the files apart by. */
function contents(fds: readonly number[]): string[] {
  return fds.map((fd) => readText(fd))
}

test.serial('an fd getter that sends through the scratch does not change what FdSocket.send sends', async (t) => {
  await withFdAudit(t, async () => {
    const [a, b] = FdSocket.pair()
    const [x, y] = socketPair('stream')
    const fileA = openTempFile(dir, 'file A')
    const fileB = openTempFile(dir, 'file B')
    const fileC = openTempFile(dir, 'file C')
    const tricky = {
      get fd(): number {
        t.is(sendFds(x, 'inner', [fileB, fileB, fileB]), 5) // fills scratch slots 0..2 meanwhile
        return fileC
      },
    }
    try {
      await a.send('outer', [fileA, tricky])
      const message = await b.receive()
      t.is(message.data.toString(), 'outer')
      t.deepEqual(contents(message.fds), ['file A', 'file C'])
      closeFds(message.fds)
      const inner = recvFds(y)
      t.deepEqual(contents(inner.fds), ['file B', 'file B', 'file B'])
      closeFds(inner.fds)
    } finally {
      a.close()
      b.close()
      closeFds([x, y, fileA, fileB, fileC])
    }
  })
})

test.serial('a Proxy fd array whose reads send through the scratch does not change what sendFds sends', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('seqpacket')
    const [x, y] = socketPair('seqpacket')
    const fileA = openTempFile(dir, 'file A')
    const fileB = openTempFile(dir, 'file B')
    const fileC = openTempFile(dir, 'file C')
    const passed = [fileA, fileA, fileC]
    const fds = new Proxy(passed, {
      get(target, key, receiver) {
        if (key === '2') sendFds(x, 'inner', [fileB, fileB, fileB])
        return Reflect.get(target, key, receiver) as unknown
      },
    })
    try {
      t.is(sendFds(a, 'outer', fds), 5)
      const message = recvFds(b)
      t.deepEqual(contents(message.fds), ['file A', 'file A', 'file C'])
      closeFds(message.fds)
      const inner = recvFds(y)
      t.deepEqual(contents(inner.fds), ['file B', 'file B', 'file B'])
      closeFds(inner.fds)
    } finally {
      closeFds([a, b, x, y, fileA, fileB, fileC])
    }
  })
})

test.serial('a Proxy fd array whose reads send through the scratch does not change what closeFds closes', async (t) => {
  await withFdAudit(t, () => {
    const [x, y] = socketPair('seqpacket')
    const keep = openTempFile(dir, 'kept')
    const close1 = openTempFile(dir, 'closed 1')
    const close2 = openTempFile(dir, 'closed 2')
    const fds = new Proxy([close1, close2], {
      get(target, key, receiver) {
        if (key === '1') sendFds(x, 'inner', [keep]) // writes `keep` into scratch slot 0
        return Reflect.get(target, key, receiver) as unknown
      },
    })
    try {
      closeFds(fds)
      t.is(readText(keep), 'kept', 'the fd the inner send passed is still open')
      t.throws(() => fs.fstatSync(close1), { code: 'EBADF' })
      t.throws(() => fs.fstatSync(close2), { code: 'EBADF' })
      const inner = recvFds(y)
      t.deepEqual(contents(inner.fds), ['kept'])
      closeFds(inner.fds)
    } finally {
      closeFds([x, y, keep])
    }
  })
})
