import test, { type ExecutionContext } from 'ava'
import { execFile, execFileSync, type ExecFileOptions } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import { withFdAudit } from './helpers/fd-audit.js'

const examples = path.join(__dirname, '..', 'examples')
const root = process.getuid?.() === 0

interface Run {
  /** The exit code (null when killed by a signal). */
  code: number | null
  stdout: string
  stderr: string
}

/** Runs an example with this Node, to its end (each example bounds itself to 20 s). */
function runExample(script: string, options: ExecFileOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(examples, script)],
      { timeout: 60_000, encoding: 'utf8', ...options },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr) })
      },
    )
  })
}

/** The captures of a regex that must match. */
function match(t: ExecutionContext, text: string, regex: RegExp): string[] {
  const m = regex.exec(text)
  if (!m) {
    t.fail(`no match for ${regex} in:\n${text}`)
    return []
  }
  return m.slice(1)
}

const nobody = () => ({
  uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim()),
  gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim()),
})

test.serial('handoff: a new process takes over the listening socket under load, with no failed request', async (t) => {
  await withFdAudit(t, async () => {
    const { code, stdout, stderr } = await runExample('handoff.js')
    t.is(stderr, '')
    const [port] = match(t, stdout, /^\[A\] pid \d+ serving http:\/\/127\.0\.0\.1:(\d+)\/$/m)
    const [pidB] = match(t, stdout, /^\[A\] spawned B \(pid (\d+)\) with a socketpair end as its fd 3$/m)
    t.regex(stdout, new RegExp(`^\\[B\\] pid ${pidB} received the listening socket as fd \\d+ \\(socket\\)$`, 'm'))
    // B serves on the very same port: it is the same socket.
    t.regex(stdout, new RegExp(`^\\[B\\] serving on it: http://127\\.0\\.0\\.1:${port}/$`, 'm'))
    t.regex(stdout, /^\[A\] B says it is serving: A stops accepting$/m)
    const [total, failed, byA, byB] = match(
      t,
      stdout,
      /^\[load\] (\d+) requests, (\d+) failed: (\d+) served by A, (\d+) served by B$/m,
    ).map(Number)
    t.is(failed, 0, 'no request failed')
    t.true(byA! > 0, 'A served some requests before the handoff')
    t.true(byB! > 0, 'B served some requests after the handoff')
    t.is(byA! + byB!, total)
    t.notRegex(stdout, /first failure/)
    t.regex(stdout, /^\[B\] stopped serving$/m)
    t.regex(stdout, /^\[A\] B exited with code 0$/m)
    // Each process audited its own fd table.
    t.regex(stdout, /^\[B\] fd audit: ok$/m)
    t.regex(stdout, /^\[A\] fd audit: ok$/m)
    t.regex(stdout, /^\[A\] handoff: ok$/m)
    t.is(code, 0, stdout)
  })
})

test.serial('worker pool: each accepted TCP connection is served by a worker through its fd', async (t) => {
  await withFdAudit(t, async () => {
    const { code, stdout, stderr } = await runExample('worker-pool.js')
    t.is(stderr, '')
    const pids = [...stdout.matchAll(/^\[parent\] spawned worker (\d) \(pid (\d+)\)$/gm)].map((m) => m[2]!)
    t.is(pids.length, 2)
    t.is([...stdout.matchAll(/^\[parent\] connection from port \d+ -> worker [12]$/gm)].length, 10)
    t.regex(stdout, /^\[parent\] 10 clients, 10 correct replies$/m)
    t.notRegex(stdout, /bad reply|could not hand over/)
    let total = 0
    for (const [i, pid] of pids.entries()) {
      // What the parent's clients saw agrees with what the worker says it did.
      const [served] = match(
        t,
        stdout,
        new RegExp(`^\\[parent\\] worker ${i + 1} \\(pid ${pid}\\) served (\\d+)$`, 'm'),
      )
      t.true(Number(served) > 0, `worker ${i + 1} served connections`)
      t.regex(stdout, new RegExp(`^\\[worker ${pid}\\] served ${served} connections$`, 'm'))
      t.regex(stdout, new RegExp(`^\\[worker ${pid}\\] fd audit: ok$`, 'm'))
      t.regex(stdout, new RegExp(`^\\[parent\\] worker ${i + 1} exited with code 0$`, 'm'))
      total += Number(served)
    }
    t.is(total, 10)
    t.regex(stdout, /^\[parent\] fd audit: ok$/m)
    t.regex(stdout, /^\[parent\] worker pool: ok$/m)
    t.is(code, 0, stdout)
  })
})

/** What every privsep run shows: the fd goes over, the child reads the secret, both audits pass. */
function checkPrivsep(t: ExecutionContext, { code, stdout, stderr }: Run): void {
  t.is(stderr, '')
  const [dir] = match(t, stdout, /^\[parent\] wrote (\S+)\/secret\.txt \(mode 0600, in a mode 0700 directory\)$/m)
  t.regex(stdout, /^\[child\] {2}received fd \d+ \(file\)$/m)
  t.regex(stdout, /^\[child\] {2}read through it: "the secret is [0-9a-f]{16}"$/m)
  t.regex(stdout, /^\[parent\] the child read the secret through the fd: it matches$/m)
  t.regex(stdout, /^\[child\] {2}fd audit: ok$/m)
  t.regex(stdout, /^\[parent\] child exited with code 0$/m)
  t.regex(stdout, /^\[parent\] fd audit: ok$/m)
  t.regex(stdout, /^\[parent\] privsep: ok$/m)
  t.false(dir !== undefined && fs.existsSync(dir), 'the temporary directory is removed')
  t.is(code, 0, stdout)
}

test.serial(
  'privsep: an unprivileged child cannot open the file, but reads it through the fd it is given',
  async (t) => {
    await withFdAudit(t, async () => {
      const run = await runExample('privsep.js')
      checkPrivsep(t, run)
      if (root) {
        // The real thing: the child runs as nobody and the kernel refuses it the file.
        const { uid, gid } = nobody()
        t.regex(
          run.stdout,
          new RegExp(`^\\[parent\\] running as root; the child will run as nobody \\(uid ${uid}, gid ${gid}\\)$`, 'm'),
        )
        t.regex(run.stdout, new RegExp(`^\\[child\\] {2}running as uid ${uid}, gid ${gid}$`, 'm'))
        t.regex(run.stdout, /^\[child\] {2}open\(\S+\/secret\.txt\) failed: EACCES$/m)
      } else {
        t.regex(run.stdout, /^\[parent\] not running as root \(uid \d+\): cannot drop privileges/m)
        t.regex(run.stdout, /^\[child\] {2}open\(\S+\/secret\.txt\) succeeded$/m)
      }
    })
  },
)

test.serial('privsep: without root, the example says so and still hands the fd over', async (t) => {
  await withFdAudit(t, async () => {
    // As root, run the whole example as nobody to exercise this path too.
    const options: ExecFileOptions = root ? { ...nobody(), cwd: '/' } : {}
    const run = await runExample('privsep.js', options)
    checkPrivsep(t, run)
    const uid = root ? nobody().uid : process.getuid?.()
    t.regex(run.stdout, new RegExp(`^\\[parent\\] not running as root \\(uid ${uid}\\): cannot drop privileges`, 'm'))
    t.regex(run.stdout, new RegExp(`^\\[child\\] {2}running as uid ${uid}, `, 'm'))
    t.regex(run.stdout, /^\[child\] {2}open\(\S+\/secret\.txt\) succeeded$/m)
  })
})
