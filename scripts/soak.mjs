#!/usr/bin/env node
// Soak test: N messages (default 1,000,000), each carrying
// one fd, from one process to another over a framed FdSocket.
//
//   node scripts/soak.mjs [--messages N] [--json]
//
// The receiver (this process) checks that every message arrives, in order,
// with exactly one fd that is the file the sender holds (same st_dev/st_ino),
// and closes it. Both processes' fd counts are sampled along the way (the
// receiver reads the sender's /proc/<pid>/fd), and their RSS measured after a
// warm-up (10 % of the messages) and at the end, each after a full GC.
//
// Passes (exit 0) when: no message is lost or out of order, every fd is valid,
// each fd count stays within a small band (what the read-ahead and the send
// batch can hold) and ends where it started, and RSS grows by less than 5 MB
// after the warm-up in both processes. Prints a summary; with --json the last
// line is the summary as JSON. Run by hand (it takes minutes); the test suite
// runs a short form (__test__/soak.spec.ts).
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

import { closeFds, FdSocket, socketPair } from 'fdpass'

const SCRIPT = fileURLToPath(import.meta.url)
const MB = 1024 * 1024
const RSS_LIMIT = 5 * MB
const SEND_BATCH = 64 // the sender awaits its sends every SEND_BATCH messages
const READ_AHEAD = 16 // FdSocket's default
const FD_BAND_RECEIVER = READ_AHEAD + 8
const FD_BAND_SENDER = SEND_BATCH + 8

// gc() to measure RSS after a full collection, and a young generation of a
// fixed size: V8 otherwise grows it in steps of a few MB whenever it likes,
// which would show as RSS growth that has nothing to do with fdpass.
const V8_FLAGS = ['--expose-gc', '--min-semi-space-size=2', '--max-semi-space-size=2']

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}

// Both processes need gc() to measure RSS meaningfully.
if (typeof globalThis.gc !== 'function') {
  const child = spawn(process.execPath, [...V8_FLAGS, SCRIPT, ...args], { stdio: 'inherit' })
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
} else if (args[0] === '--child') {
  await sender(Number(args[1]), args[2])
} else {
  await receiver(Number(option('--messages', '1000000')), args.includes('--json'))
}

function fdCount(pid = 'self') {
  // The directory's own fd is listed while it is being read.
  return fs.readdirSync(`/proc/${pid}/fd`).length - (pid === 'self' ? 1 : 0)
}

function rssOf(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : NaN
}

async function settledRss() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc()
    await new Promise((r) => setTimeout(r, 10))
  }
  return process.memoryUsage().rss
}

/** The sending process: fd 3 is its socket, `file` the file it sends. */
async function sender(n, file) {
  const fdsAtStart = fdCount()
  const sock = FdSocket.from(3)
  const fd = fs.openSync(file, 'r')
  // At least half of a short run (JIT and heap sizes settle first), a tenth of a long one.
  const warmAt = Math.max(Math.floor(n / 10), Math.min(Math.floor(n / 2), 25_000))
  const payload = Buffer.alloc(8)
  let rssWarm = 0
  let pending = []
  for (let i = 0; i < n; i++) {
    payload.writeUInt32LE(i, 0)
    payload.writeUInt32LE(i ^ 0x5a5a5a5a, 4)
    pending.push(sock.send(payload, [fd]))
    if (pending.length === SEND_BATCH) {
      await Promise.all(pending)
      pending = []
    }
    if (i === warmAt) rssWarm = await settledRss()
  }
  await Promise.all(pending)
  const done = await sock.receive({ signal: AbortSignal.timeout(60_000) })
  const rssEnd = await settledRss()
  closeFds([fd])
  sock.close()
  await new Promise((r) => setTimeout(r, 20))
  const report = {
    ack: done.data.toString(),
    rssWarm,
    rssEnd,
    fdsAtStart: fdsAtStart - 1, // fd 3 is gone now
    fdsAtEnd: fdCount(),
  }
  process.stdout.write(JSON.stringify(report) + '\n')
}

/** The receiving process: spawns the sender, checks every message. */
async function receiver(n, json) {
  if (!Number.isInteger(n) || n < 10) throw new Error('--messages must be an integer >= 10')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-soak-'))
  const file = path.join(dir, 'sent')
  fs.writeFileSync(file, 'the soak file')
  const { dev, ino } = fs.statSync(file)
  // Node keeps some fds it opens for its first children (the SIGCHLD pipe, a
  // /dev/null for piped stdio with extra fds): let a throwaway child of the
  // same shape open them before counting.
  spawnSync(process.execPath, ['-e', ''])
  const devNull = fs.openSync('/dev/null', 'r')
  const warm = spawn(process.execPath, ['-e', ''], { stdio: ['ignore', 'pipe', 'inherit', devNull] })
  warm.stdout.resume()
  await new Promise((resolve) => warm.on('close', resolve))
  fs.closeSync(devNull)
  const fdsAtStart = fdCount()
  const [mine, theirs] = socketPair()
  const child = spawn(process.execPath, [...V8_FLAGS, SCRIPT, '--child', String(n), file], {
    stdio: ['ignore', 'pipe', 'inherit', theirs],
  })
  closeFds([theirs])
  let childOut = ''
  child.stdout.on('data', (c) => (childOut += c))
  const childExit = new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)))
  const sock = FdSocket.from(mine)

  // At least half of a short run (JIT and heap sizes settle first), a tenth of a long one.
  const warmAt = Math.max(Math.floor(n / 10), Math.min(Math.floor(n / 2), 25_000))
  const sampleEvery = Math.max(1, Math.floor(n / 200))
  const samples = { receiver: [], sender: [] }
  let received = 0
  let outOfOrder = 0
  let badFds = 0
  let rssWarm = 0
  const rssTrail = [] // receiver RSS (MB) after each tenth of the messages
  let memWarm = process.memoryUsage()
  let senderRssWarmProc = 0
  const started = Date.now()
  let warmTime = 0
  const deadline = AbortSignal.timeout(Math.max(120_000, n * 2))
  try {
    while (received < n) {
      const m = await sock.receive({ signal: deadline })
      const i = m.data.readUInt32LE(0)
      if (m.data.length !== 8 || i !== received || m.data.readUInt32LE(4) !== (i ^ 0x5a5a5a5a) >>> 0) outOfOrder++
      if (m.fds.length !== 1) badFds++
      for (const fd of m.fds) {
        try {
          const st = fs.fstatSync(fd)
          if (st.dev !== dev || st.ino !== ino) badFds++
        } catch {
          badFds++
        }
      }
      closeFds(m.fds)
      received++
      if (received % sampleEvery === 0 && received > warmAt) {
        samples.receiver.push(fdCount())
        try {
          samples.sender.push(fdCount(child.pid))
        } catch {
          // the sender exited early: counted as lost messages below
        }
      }
      if (received % Math.floor(n / 10) === 0 && received >= warmAt)
        rssTrail.push(Number(((await settledRss()) / MB).toFixed(1)))
      if (received === warmAt) {
        rssWarm = await settledRss()
        memWarm = process.memoryUsage()
        senderRssWarmProc = rssOf(child.pid)
        warmTime = Date.now()
      }
    }
  } catch (err) {
    console.error(`soak: receive failed after ${received} messages: ${err.code ?? ''} ${err.message}`)
  }
  const elapsed = (Date.now() - started) / 1000
  const rate = (n - warmAt) / ((Date.now() - (warmTime || started)) / 1000)
  await sock.send('done').catch(() => {})
  const code = await childExit
  sock.close()
  await new Promise((r) => setTimeout(r, 20))
  const rssEnd = await settledRss()
  const memEnd = process.memoryUsage()
  let senderReport = {}
  try {
    senderReport = JSON.parse(childOut.trim().split('\n').pop())
  } catch {
    // reported as a failure below
  }
  fs.rmSync(dir, { recursive: true })
  const fdsAtEnd = fdCount()

  const range = (xs) => (xs.length ? [Math.min(...xs), Math.max(...xs)] : [NaN, NaN])
  const summary = {
    messages: n,
    received,
    lost: n - received,
    outOfOrder,
    badFds,
    seconds: Number(elapsed.toFixed(1)),
    messagesPerSecond: Math.round(rate),
    receiver: {
      fdRange: range(samples.receiver),
      fdsAtStart,
      fdsAtEnd,
      rssWarmMB: Number((rssWarm / MB).toFixed(2)),
      rssEndMB: Number((rssEnd / MB).toFixed(2)),
      rssGrowthMB: Number(((rssEnd - rssWarm) / MB).toFixed(2)),
      // Where the growth is: V8 heap, external memory, array buffers (MB).
      heapUsedGrowthMB: Number(((memEnd.heapUsed - memWarm.heapUsed) / MB).toFixed(2)),
      heapTotalGrowthMB: Number(((memEnd.heapTotal - memWarm.heapTotal) / MB).toFixed(2)),
      externalGrowthMB: Number(((memEnd.external - memWarm.external) / MB).toFixed(2)),
      arrayBuffersGrowthMB: Number(((memEnd.arrayBuffers - memWarm.arrayBuffers) / MB).toFixed(2)),
    },
    sender: {
      exit: code,
      fdRange: range(samples.sender),
      fdsAtStart: senderReport.fdsAtStart,
      fdsAtEnd: senderReport.fdsAtEnd,
      rssWarmMB: Number(((senderReport.rssWarm ?? NaN) / MB).toFixed(2)),
      rssEndMB: Number(((senderReport.rssEnd ?? NaN) / MB).toFixed(2)),
      rssGrowthMB: Number((((senderReport.rssEnd ?? NaN) - (senderReport.rssWarm ?? NaN)) / MB).toFixed(2)),
      rssWarmProcMB: Number((senderRssWarmProc / MB).toFixed(2)),
    },
    samples: samples.receiver.length,
    receiverRssTrailMB: rssTrail,
  }
  const failures = []
  if (summary.lost !== 0) failures.push(`${summary.lost} messages lost`)
  if (outOfOrder !== 0) failures.push(`${outOfOrder} messages out of order or corrupted`)
  if (badFds !== 0) failures.push(`${badFds} missing or wrong fds`)
  if (code !== 0) failures.push(`the sender exited with ${code}`)
  if (senderReport.ack !== 'done') failures.push('the sender did not report')
  const [rMin, rMax] = summary.receiver.fdRange
  const [sMin, sMax] = summary.sender.fdRange
  if (!(rMax - rMin <= FD_BAND_RECEIVER)) failures.push(`receiver fd count ranged ${rMin}..${rMax}`)
  if (!(sMax - sMin <= FD_BAND_SENDER)) failures.push(`sender fd count ranged ${sMin}..${sMax}`)
  if (fdsAtEnd !== fdsAtStart) failures.push(`receiver fds: ${fdsAtStart} at start, ${fdsAtEnd} at end`)
  if (senderReport.fdsAtEnd !== senderReport.fdsAtStart) {
    failures.push(`sender fds: ${senderReport.fdsAtStart} at start, ${senderReport.fdsAtEnd} at end`)
  }
  if (!(rssEnd - rssWarm < RSS_LIMIT)) failures.push(`receiver RSS grew by ${summary.receiver.rssGrowthMB} MB`)
  if (!(senderReport.rssEnd - senderReport.rssWarm < RSS_LIMIT)) {
    failures.push(`sender RSS grew by ${summary.sender.rssGrowthMB} MB`)
  }
  summary.ok = failures.length === 0
  summary.failures = failures

  console.log(
    `fdpass soak: ${n} messages with 1 fd each, ${elapsed.toFixed(1)} s (${summary.messagesPerSecond} msg/s after warm-up)`,
  )
  console.log(`  received ${received}, lost ${summary.lost}, out of order ${outOfOrder}, bad fds ${badFds}`)
  console.log(
    `  receiver fds: ${fdsAtStart} at start, ${rMin}..${rMax} sampled (${summary.samples} samples), ${fdsAtEnd} at end`,
  )
  console.log(
    `  sender   fds: ${senderReport.fdsAtStart} at start, ${sMin}..${sMax} sampled, ${senderReport.fdsAtEnd} at end`,
  )
  console.log(
    `  receiver RSS: ${summary.receiver.rssWarmMB} MB after warm-up, ${summary.receiver.rssEndMB} MB at end (${summary.receiver.rssGrowthMB} MB; V8 heap used ${summary.receiver.heapUsedGrowthMB} MB, heap total ${summary.receiver.heapTotalGrowthMB} MB, external ${summary.receiver.externalGrowthMB} MB)`,
  )
  console.log(`  receiver RSS after each tenth: ${rssTrail.join(', ')} MB`)
  console.log(
    `  sender   RSS: ${summary.sender.rssWarmMB} MB after warm-up, ${summary.sender.rssEndMB} MB at end (${summary.sender.rssGrowthMB} MB)`,
  )
  console.log(summary.ok ? '  PASS' : `  FAIL: ${failures.join('; ')}`)
  if (json) console.log(JSON.stringify(summary))
  process.exitCode = summary.ok ? 0 : 1
}
