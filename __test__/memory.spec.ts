/**
 * Receive buffers do not keep the memory of a large `maxBytes` or a large
 * message: the process's resident size returns to where it was.
 */
import test from 'ava'

import { closeFds, recvFds, sendFds, socketPair } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

const MiB = 1024 * 1024

function rss(): number {
  return process.memoryUsage().rss
}

// The smaller maxBytes first: each test must be able to fail on its own
// (a kept buffer already grown by an earlier test would hide a later one).
test.serial('128 KiB messages received with maxBytes 64 MiB leave RSS where it was', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('stream')
    const chunk = Buffer.alloc(128 * 1024, 7)
    try {
      const before = rss()
      for (let i = 0; i < 40; i++) {
        sendFds(a, chunk, [a])
        let got = 0
        let fdsGot = 0
        while (got < chunk.length) {
          const { data, fds } = recvFds(b, { maxBytes: 64 * MiB })
          got += data.length
          fdsGot += fds.length
          closeFds(fds)
        }
        t.is(got, chunk.length)
        t.is(fdsGot, 1)
      }
      const grown = rss() - before
      t.true(grown < 16 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`)
    } finally {
      closeFds([a, b])
    }
  })
})

test.serial('recvFds with maxBytes 2 ** 29 does not keep 512 MiB', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('stream')
    try {
      // Warms up the receive path with a small buffer: "before" must not hold a large one.
      sendFds(a, 'warm-up', [a])
      closeFds(recvFds(b, { maxBytes: 200 * 1024 }).fds)
      const before = rss()
      for (let i = 0; i < 5; i++) {
        sendFds(a, 'x', [a])
        const { data, fds } = recvFds(b, { maxBytes: 2 ** 29 })
        t.is(data.toString(), 'x')
        t.is(fds.length, 1)
        closeFds(fds)
      }
      const grown = rss() - before
      t.true(grown < 16 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`)
    } finally {
      closeFds([a, b])
    }
  })
})
