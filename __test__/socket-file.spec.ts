/**
 * Placing a socket at a path: processes racing to replace a stale socket
 * file (exactly one wins), `mode` on every path that works without it, no
 * temporary names, errors that name the caller's path, and lock files that
 * a hostile user planted (a FIFO, a symbolic link).
 */
import test from 'ava'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

import { bind, connect, listen } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { codeOf } from './helpers/outcomes.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-socket-file-'))
// Reachable by the unprivileged user of the permission tests.
fs.chmodSync(tmp, 0o755)
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

const RACER = path.join(__dirname, 'peers', 'listen_racer.js')
const NOBODY = 65534
/** The longest filesystem path sun_path holds. */
const MAX_PATH = process.platform === 'linux' ? 107 : 103
/** Only root can run a client as another user. */
const root = process.getuid?.() === 0

/** Leaves a stale socket file at `p`: bound by a process that exits without removing it. */
function staleSocket(p: string): void {
  const r = spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', p])
  if (r.status !== 0) throw new Error(String(r.stderr))
}

interface Racer {
  child: ChildProcess
  next(): Promise<Record<string, unknown>>
  send(line: string): void
}

function racer(): Racer {
  const child = spawn(process.execPath, [RACER], { stdio: ['pipe', 'pipe', 'inherit'] })
  const queue: Array<Record<string, unknown>> = []
  const waiting: Array<(v: Record<string, unknown>) => void> = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const value = JSON.parse(line) as Record<string, unknown>
    const w = waiting.shift()
    if (w) w(value)
    else queue.push(value)
  })
  return {
    child,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiting.push(resolve))),
    send: (line) => child.stdin!.write(`${line}\n`),
  }
}

test.serial(
  'replaceStale: 2 to 4 processes race for one stale socket file, 50 times: exactly one wins each time, the others get EADDRINUSE',
  async (t) => {
    await withFdAudit(t, async () => {
      const racers = [racer(), racer(), racer(), racer()]
      for (const r of racers) t.true((await r.next()).ready as boolean)
      const p = path.join(tmp, 'race.sock')
      const winnersPerRun: number[] = []
      const losers: string[] = []
      const byN: Record<number, number> = { 2: 0, 3: 0, 4: 0 }
      for (let run = 0; run < 50; run++) {
        const n = 2 + (run % 3)
        byN[n]!++
        staleSocket(p)
        const at = Date.now() + 40
        const these = racers.slice(0, n)
        for (const r of these) r.send(`race ${p} ${at}`)
        const results = await Promise.all(these.map((r) => r.next()))
        const winners = results.filter((r) => r.won === true)
        winnersPerRun.push(winners.length)
        losers.push(...results.filter((r) => r.won !== true).map((r) => String(r.code)))
        for (const loser of results.filter((r) => r.won !== true)) {
          t.is(loser.code, 'EADDRINUSE', String(loser.message))
          t.regex(String(loser.message), /another server listens on it/)
        }
        if (winners.length === 1) {
          // The winner's socket is the one at the path: a client reaches it.
          const client = await connect(p)
          t.is(client.peerCredentials().pid, winners[0]!.pid as number, `run ${run}: the winner answers`)
          client.close()
        }
        for (const r of these) r.send('release')
        for (const r of these) t.true((await r.next()).released as boolean)
        t.false(fs.existsSync(p), 'the winner removed its socket file')
        t.false(fs.existsSync(`${p}.lock`), 'no lock file is left')
      }
      const codes = [...new Set(losers)].map((c) => `${c} ×${losers.filter((l) => l === c).length}`).join(', ')
      t.log(
        `50 runs (2 racers: ${byN[2]}, 3: ${byN[3]}, 4: ${byN[4]}), winners per run: ${winnersPerRun.join(' ')}; losers: ${codes}`,
      )
      t.deepEqual(winnersPerRun, Array(50).fill(1), `winners per run: ${winnersPerRun.join(' ')}`)
      for (const r of racers) r.send('exit')
      for (const r of racers) {
        const audit = await r.next()
        t.true(audit.fdAuditOk as boolean, JSON.stringify(audit))
      }
      await Promise.all(racers.map((r) => (r.child.exitCode === null ? once(r.child, 'exit') : undefined)))
    })
  },
)

/** Whether an unprivileged process may connect to `p`: 'ok' or the errno name. */
function connectAsNobody(p: string): string {
  const r = spawnSync(
    'python3',
    [
      '-c',
      'import socket,sys,errno\ntry:\n socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print("ok")\nexcept OSError as e: print(errno.errorcode[e.errno])',
      p,
    ],
    { uid: NOBODY, gid: NOBODY, encoding: 'utf8' },
  )
  return r.stdout.trim() || String(r.stderr)
}

/** A path of exactly `len` bytes in the test directory. */
function pathOfLength(len: number, tag: string): string {
  const prefix = path.join(tmp, tag)
  return prefix + 'x'.repeat(len - prefix.length)
}

test.serial(
  'mode works on the longest path that binds without it (107 bytes on Linux), for listen and bind, with nothing else left in the directory',
  async (t) => {
    await withFdAudit(t, async () => {
      // A short name in a long directory: no room for a longer temporary name.
      const dir = path.join(tmp, 'd'.repeat(MAX_PATH - 2 - tmp.length - 1))
      fs.mkdirSync(dir, { mode: 0o755 })
      const longest = path.join(dir, 's')
      t.is(Buffer.byteLength(longest), MAX_PATH)
      for (const mode of [0o600, 0o666]) {
        const server = await listen(longest, { mode })
        t.is(
          fs.statSync(longest).mode & 0o777,
          mode,
          `mode ${mode.toString(8)} (with the umask at ${process.umask().toString(8)})`,
        )
        t.deepEqual(fs.readdirSync(dir), [path.basename(longest)], 'no temporary name, no lock file')
        // Checked as an unprivileged client where this test runs as root (as
        // .ci/run does); otherwise the mode itself is what it can check.
        if (root) t.is(connectAsNobody(longest), mode === 0o600 ? 'EACCES' : 'ok')
        const client = await connect(longest)
        const served = await server.accept()
        client.close()
        served.close()
        await server.close()
        const dgram = await bind(longest, { mode })
        t.is(fs.statSync(longest).mode & 0o777, mode)
        dgram.close()
      }
      t.deepEqual(fs.readdirSync(dir), [])
    })
  },
)

test.serial("errors name the caller's path, with and without mode", async (t) => {
  await withFdAudit(t, async () => {
    const tooLong = pathOfLength(MAX_PATH + 1, 'long')
    for (const options of [{}, { mode: 0o600 }]) {
      const err = await listen(tooLong, options).catch((e: NodeJS.ErrnoException & { address?: string }) => e)
      t.is((err as NodeJS.ErrnoException).code, 'ENAMETOOLONG')
      t.true((err as Error).message.includes(tooLong), (err as Error).message)
      const missing = path.join(tmp, 'no-such-dir', 'x.sock')
      const e2 = (await listen(missing, options).catch((e: unknown) => e)) as NodeJS.ErrnoException & {
        address?: string
      }
      t.is(e2.code, 'ENOENT')
      t.true(e2.message.includes(missing), e2.message)
      t.is(e2.address, missing)
    }
    t.deepEqual(
      fs.readdirSync(tmp).filter((n) => n.startsWith('long') || n.endsWith('.lock')),
      [],
      'no lock file is left behind on failure',
    )
  })
})

test.serial('a FIFO or a symbolic link planted at <path>.lock neither hangs listen nor is followed', async (t) => {
  await withFdAudit(t, async () => {
    const p = path.join(tmp, 'planted.sock')
    spawnSync('mkfifo', [`${p}.lock`])
    const err = (await listen(p).catch((e: unknown) => e)) as Error
    t.true(err.message.includes(`${p}.lock`), err.message)
    t.true(fs.lstatSync(`${p}.lock`).isFIFO(), 'left as it was')
    t.false(fs.existsSync(p))
    fs.unlinkSync(`${p}.lock`)
    const target = path.join(tmp, 'target')
    fs.symlinkSync(target, `${p}.lock`)
    t.is(await codeOf(listen(p)), 'ELOOP')
    t.false(fs.existsSync(target), 'the link was not followed')
    fs.unlinkSync(`${p}.lock`)
    // Nothing planted: it works, and leaves nothing but the socket.
    const server = await listen(p)
    t.false(fs.existsSync(`${p}.lock`))
    await server.close()
  })
})

test.serial(
  'a process that holds <path>.lock and never lets go: listen gives up after 5 s with EADDRINUSE naming the lock file',
  async (t) => {
    await withFdAudit(t, async () => {
      const p = path.join(tmp, 'held.sock')
      const holder = spawn(
        'python3',
        [
          '-c',
          'import fcntl,sys,time\nf=open(sys.argv[1],"w")\nfcntl.flock(f,fcntl.LOCK_EX)\nprint("held",flush=True)\ntime.sleep(60)',
          `${p}.lock`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      try {
        await once(holder.stdout!, 'data')
        const started = Date.now()
        const err = (await listen(p, { replaceStale: true }).catch((e: unknown) => e)) as NodeJS.ErrnoException
        const waited = Date.now() - started
        t.is(err.code, 'EADDRINUSE')
        t.true(err.message.includes(`${p}.lock`), err.message)
        t.true(waited >= 4900 && waited < 8000, `gave up after ${waited} ms`)
        t.false(fs.existsSync(p), 'nothing was bound')
      } finally {
        holder.kill('SIGKILL')
        await once(holder, 'exit')
        fs.rmSync(`${p}.lock`, { force: true })
      }
    })
  },
)

test.serial('a live server, a non-socket file and a stale file at the path', async (t) => {
  await withFdAudit(t, async () => {
    const p = path.join(tmp, 'taken.sock')
    const live = await listen(p)
    const e1 = (await listen(p, { replaceStale: true }).catch((e: unknown) => e)) as NodeJS.ErrnoException
    t.is(e1.code, 'EADDRINUSE')
    t.regex(e1.message, /another server listens on it/)
    await live.close()
    fs.writeFileSync(p, 'not a socket')
    const e2 = (await listen(p, { replaceStale: true }).catch((e: unknown) => e)) as NodeJS.ErrnoException
    t.is(e2.code, 'EADDRINUSE')
    t.regex(e2.message, /not a socket/)
    t.is(fs.readFileSync(p, 'utf8'), 'not a socket', 'never removed')
    fs.unlinkSync(p)
    staleSocket(p)
    const e3 = (await listen(p).catch((e: unknown) => e)) as NodeJS.ErrnoException
    t.is(e3.code, 'EADDRINUSE')
    t.regex(e3.message, /nobody listens on it/)
    const server = await listen(p, { replaceStale: true, mode: 0o600 })
    t.is(fs.statSync(p).mode & 0o777, 0o600)
    await server.close()
    t.false(fs.existsSync(p))
  })
})
