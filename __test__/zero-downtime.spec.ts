/**
 * The zero-downtime example (examples/zero-downtime/): an HTTP server hands
 * its listening socket to its successor three times while a bounded load
 * generator runs; no request may fail, every generation must serve some, and
 * each generation's fd audit must pass.
 */
import test from 'ava'
import { execFile } from 'node:child_process'
import * as path from 'node:path'

import { slowdown } from './helpers/emulation.js'
import { withFdAudit } from './helpers/fd-audit.js'

const run = path.join(__dirname, '..', 'examples', 'zero-downtime', 'run.js')

test.serial('three restarts under load: zero failed requests, each generation served some', async (t) => {
  await withFdAudit(t, async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(process.execPath, [run], { timeout: 60_000 * slowdown, encoding: 'utf8' }, (err, out, errOut) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout: out, stderr: errOut })
        })
      },
    )
    t.is(stderr, '')
    const summary = /^\[run\] (\d+) requests, (\d+) failed; served by (.*)$/m.exec(stdout)
    t.truthy(summary, stdout)
    const [, total, failed, served] = summary!
    t.is(Number(failed), 0, 'no request failed')
    const byGeneration = new Map(
      [...served!.matchAll(/generation (\d+): (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]),
    )
    t.deepEqual([...byGeneration.keys()].sort(), [1, 2, 3, 4])
    for (const [generation, count] of byGeneration) t.true(count > 0, `generation ${generation} served requests`)
    t.is(
      [...byGeneration.values()].reduce((a, b) => a + b, 0),
      Number(total),
    )
    t.log(`${total} requests: ${served}`)
    // Generations 2 to 4 took the socket over, on the same port; each drained and audited its fds.
    const [, port] = /^\[gen 1\] listening afresh on http:\/\/127\.0\.0\.1:(\d+)\/$/m.exec(stdout) ?? []
    for (const g of [2, 3, 4]) {
      t.regex(
        stdout,
        new RegExp(`^\\[gen ${g}\\] took over http://127\\.0\\.0\\.1:${port}/ from the previous generation$`, 'm'),
      )
    }
    for (const g of [1, 2, 3, 4]) t.regex(stdout, new RegExp(`^\\[gen ${g}\\] drained; fd audit: ok$`, 'm'))
    for (const g of [1, 2, 3, 4]) t.regex(stdout, new RegExp(`^\\[run\\] generation ${g} exited with 0$`, 'm'))
    t.regex(stdout, /^\[run\] zero-downtime: ok$/m)
    t.is(code, 0, stdout)
  })
})
