/**
 * close() closes: right after `close()` / `server.close()` returns, in the
 * same tick, the socket's fd is gone from /proc/self/fd, whatever state the
 * socket was in (idle, watched by the event loop, a send queued, after an
 * aborted receive or an error), in the main thread and in a worker. A peer
 * waiting for the end of the stream, or a supervisor counting fds, sees it
 * at once, as with Node's net.Socket#destroy().
 */
import test from 'ava'
import { once } from 'node:events'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import { withFdAudit } from './helpers/fd-audit.js'

const checks = path.join(__dirname, 'peers', 'close-checks.js')

interface Result {
  what: string
  closed?: boolean
  outcome?: string
}

function assertResults(t: import('ava').ExecutionContext, results: Result[], where: string) {
  t.true(results.length >= 20, `${where}: every check ran`)
  for (const r of results) {
    if (r.closed !== undefined) t.true(r.closed, `${where}: ${r.what}: the fd is closed when close() returns`)
  }
  const outcome = (what: string) => results.find((r) => r.what === what)?.outcome
  for (const kind of ['stream framed', 'stream', 'seqpacket', 'dgram']) {
    t.is(outcome(`pair ${kind}: the waiting receive`), 'ERR_SOCKET_CLOSED', where)
  }
  // Sends queued when close() ran are dropped (their fd duplicates closed)
  // and reject: the fd does not wait for them.
  t.is(outcome('pair stream: the queued send'), 'ERR_SOCKET_CLOSED', where)
  t.is(outcome('aborted receive'), 'ABORT_ERR', where)
  t.is(outcome('after a protocol error'), 'ERR_FDPASS_PROTOCOL', where)
  t.is(outcome('listen() stream: the waiting accept'), 'ERR_SOCKET_CLOSED', where)
}

test.serial('close() closes the fd before it returns, for every socket kind (main thread)', async (t) => {
  await withFdAudit(t, async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runChecks } = require(checks) as { runChecks(): Promise<Result[]> }
    assertResults(t, await runChecks(), 'main thread')
  })
})

test.serial('close() closes the fd before it returns, for every socket kind (worker thread)', async (t) => {
  await withFdAudit(t, async () => {
    const worker = new Worker(
      `require(${JSON.stringify(checks)}).runChecks().then((r) => require('node:worker_threads').parentPort.postMessage(r))`,
      { eval: true },
    )
    // One listener for 'exit', made now: the worker may exit right after its
    // message, before a listener attached later would see the event.
    const exit = once(worker, 'exit')
    const exitedFirst = exit.then(([code]) => {
      throw new Error(`the worker exited with code ${code} before it reported`)
    })
    const [results] = (await Promise.race([once(worker, 'message'), exitedFirst])) as [Result[]]
    exitedFirst.catch(() => {})
    assertResults(t, results, 'worker')
    await exit
  })
})
