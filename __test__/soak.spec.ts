/**
 * The short form of the soak: scripts/soak.mjs with 50,000
 * messages of 1 fd each across two processes. Zero lost messages, every fd
 * valid, both processes' fd counts within a small band and back where they
 * started, RSS growth under 5 MB after warm-up. The full run (1,000,000
 * messages) is `node scripts/soak.mjs`, by hand.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import * as path from 'node:path'

import { withFdAudit } from './helpers/fd-audit.js'

const SOAK = path.join(__dirname, '..', 'scripts', 'soak.mjs')
const MESSAGES = 50_000

interface Side {
  fdRange: [number, number]
  fdsAtStart: number
  fdsAtEnd: number
  rssGrowthMB: number
}

interface Summary {
  messages: number
  received: number
  lost: number
  outOfOrder: number
  badFds: number
  receiver: Side
  sender: Side & { exit: number }
  ok: boolean
  failures: string[]
}

test.serial(`soak: ${MESSAGES} messages with an fd each between two processes`, async (t) => {
  await withFdAudit(t, async () => {
    const child = spawn(process.execPath, [SOAK, '--messages', String(MESSAGES), '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (c: Buffer) => (out += c))
    child.stderr.on('data', (c: Buffer) => (err += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    const [code] = (await once(child, 'close')) as [number | null]
    clearTimeout(timer)
    const lines = out.trim().split('\n')
    t.log(lines.slice(0, -1).join('\n'))
    const summary = JSON.parse(lines[lines.length - 1] as string) as Summary
    t.is(summary.messages, MESSAGES)
    t.is(summary.received, MESSAGES, err)
    t.is(summary.lost, 0)
    t.is(summary.outOfOrder, 0)
    t.is(summary.badFds, 0)
    t.is(summary.sender.exit, 0)
    for (const [name, side, band] of [
      ['receiver', summary.receiver, 24],
      ['sender', summary.sender, 72],
    ] as Array<[string, Side, number]>) {
      const [min, max] = side.fdRange
      t.true(max - min <= band, `${name} fd count ranged ${min}..${max}`)
      t.is(side.fdsAtEnd, side.fdsAtStart, `${name} fds back where they started`)
      t.true(side.rssGrowthMB < 5, `${name} RSS grew by ${side.rssGrowthMB} MB`)
    }
    t.deepEqual(summary.failures, [])
    t.true(summary.ok)
    t.is(code, 0, err)
  })
})
