/**
 * listen()'s backlog, taken as Node's net.Server.listen takes it: every value
 * the API accepts works, whatever the C library's SOMAXCONN constant (128 on
 * musl and macOS, 4096 on glibc); the kernel caps the queue at its own
 * maximum. Values the API refuses are refused before any syscall.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, connect, listen } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'
import { codeOf, timeout } from './helpers/outcomes.js'

// The addon's loader, to fill a listener's queue with connections that are
// never accepted (fdpass's connect() would wait for room instead).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const binding = require('../binding.js') as {
  unixSocket(type: string): number
  connectUnix(fd: number, path: Uint8Array): boolean
}

const linux = process.platform === 'linux'
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-backlog-'))
const DEFAULT_BACKLOG = 511
const BACKLOGS: Array<number | undefined> = [undefined, 1, 128, 4096, 65535, 2 ** 31 - 1]
const label = (backlog: number | undefined): string =>
  backlog === undefined ? `default (${DEFAULT_BACKLOG})` : String(backlog)
let counter = 0
const socketPath = (): string => path.join(tmp, `b${counter++}.sock`)

test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

for (const backlog of BACKLOGS) {
  test.serial(`listen() with backlog ${label(backlog)}: a client connects and an fd goes through`, async (t) => {
    await withFdAudit(t, async () => {
      const where = socketPath()
      const server = await listen(where, backlog === undefined ? {} : { backlog })
      const client = await connect(where)
      const accepted = await server.accept(timeout())
      const file = openTempFile(tmp, 'backlog')
      await client.send('file', [file])
      closeFds([file])
      const { data, fds } = await accepted.receive(timeout())
      t.is(data.toString(), 'file')
      t.is(fds.length, 1)
      t.is(readText(fds[0]!), 'backlog')
      closeFds(fds)
      client.close()
      accepted.close()
      await server.close()
    })
  })
}

// Linux queues up to backlog + 1 connections that nobody accepted yet, the
// backlog being capped at net.core.somaxconn; one more connect says EAGAIN.
// (macOS counts its queue differently, 3/2 of the backlog, and refuses the
// connection instead: there the test above is the check.)
if (linux) {
  const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim())
  for (const backlog of BACKLOGS) {
    const expected = Math.min(backlog ?? DEFAULT_BACKLOG, somaxconn) + 1
    test.serial(
      `listen() with backlog ${label(backlog)}: the kernel queues min(backlog, somaxconn ${somaxconn}) + 1 = ${expected} connections`,
      async (t) => {
        await withFdAudit(t, async () => {
          const where = socketPath()
          const address = Buffer.from(where)
          const server = await listen(where, backlog === undefined ? {} : { backlog })
          const clients: number[] = []
          try {
            // Synchronous: the server's event loop cannot accept any of them meanwhile.
            for (;;) {
              const fd = binding.unixSocket('stream')
              clients.push(fd)
              if (!binding.connectUnix(fd, address)) break
              if (clients.length > expected + 1) break
            }
            t.is(clients.length - 1, expected, 'connections queued before the first EAGAIN')
          } finally {
            closeFds(clients)
            await server.close()
          }
        })
      },
    )
  }
}

test.serial(
  'listen() refuses a backlog that is negative, not an integer or not a number, before any syscall',
  async (t) => {
    await withFdAudit(t, async () => {
      const where = socketPath()
      for (const backlog of [-1, -511, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
        const err = await t.throwsAsync(listen(where, { backlog }), { instanceOf: RangeError })
        t.is((err as NodeJS.ErrnoException).code, 'ERR_OUT_OF_RANGE', `backlog ${backlog}`)
        t.regex(err!.message, /"backlog" option must be an integer >= 0/)
      }
      for (const backlog of ['511', null, 10n, {}]) {
        const err = await t.throwsAsync(listen(where, { backlog: backlog as unknown as number }), {
          instanceOf: TypeError,
        })
        t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_TYPE', `backlog ${String(backlog)}`)
      }
      t.false(fs.existsSync(where), 'nothing was bound')
      t.is(await codeOf(connect(where)), 'ENOENT')
    })
  },
)
