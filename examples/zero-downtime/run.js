// Runs examples/zero-downtime/server.js through three restarts under load:
// a bounded load generator (a few concurrent requests, no keep-alive) runs
// the whole time; each restart starts the next generation, which takes the
// listening socket from the running one. Prints how many requests each
// generation served and how many failed (there must be none).
//
//   node examples/zero-downtime/run.js
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')
const { startLoad } = require('../http-load')

const RESTARTS = 3
const LOAD_BETWEEN_MS = 400 // load on each generation before the next one starts
const CONCURRENCY = 4
const MAX_REQUESTS = 100_000 // a bound, whatever the timings
const log = (line) => console.log(`[run] ${line}`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zero-downtime-'))
const handoffSocket = path.join(dir, 'handoff.sock')
const children = []

/** Starts a generation; resolves once it serves, with its port. */
function startGeneration(generation) {
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, HANDOFF_SOCKET: handoffSocket, GENERATION: String(generation) },
  })
  children.push(child)
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
  return new Promise((resolve, reject) => {
    let port
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      console.log(line)
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(line)
      if (m) port = Number(m[1])
      if (/ serving \(pid \d+\)$/.test(line)) resolve(port)
    })
    child.once('exit', () => reject(new Error(`generation ${generation} exited before serving`)))
  })
}

/** The generation that served a response. */
function generationOf(status, body) {
  const m = /^generation (\d+) pid \d+\n$/.exec(body)
  return status === 200 && m ? m[1] : undefined
}

async function main() {
  const port = await startGeneration(1)
  const load = startLoad(port, {
    concurrency: CONCURRENCY,
    maxRequests: MAX_REQUESTS,
    timeout: 5000,
    serverOf: generationOf,
  })
  log(`load generator: ${CONCURRENCY} requests at a time, no keep-alive, on port ${port}`)
  for (let generation = 2; generation <= RESTARTS + 1; generation++) {
    await sleep(LOAD_BETWEEN_MS)
    log(`restart ${generation - 1}: starting generation ${generation}`)
    const newPort = await startGeneration(generation)
    if (newPort !== port) throw new Error(`generation ${generation} serves port ${newPort}, not ${port}`)
    const status = await children[generation - 2].exited
    log(`generation ${generation - 1} exited with ${status}`)
  }
  await sleep(LOAD_BETWEEN_MS)
  const stats = await load.stop()
  const last = children[children.length - 1]
  last.kill('SIGTERM')
  log(`generation ${children.length} exited with ${await last.exited}`)

  const served = Object.entries(stats.by)
    .map(([g, n]) => `generation ${g}: ${n}`)
    .join(', ')
  log(`${stats.total} requests, ${stats.failed} failed; served by ${served}`)
  if (stats.firstError) log(`first failure: ${stats.firstError}`)
  const statuses = await Promise.all(children.map((c) => c.exited))
  const everyGenerationServed = children.every((_, i) => (stats.by[i + 1] ?? 0) > 0)
  const ok = stats.failed === 0 && everyGenerationServed && statuses.every((s) => s === 0)
  log(ok ? 'zero-downtime: ok' : 'zero-downtime: FAILED')
  process.exitCode = ok ? 0 : 1
}

function cleanup() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  fs.rmSync(dir, { recursive: true, force: true })
}

// A bound on the whole run: never hang, whatever goes wrong.
setTimeout(() => {
  log('timed out')
  cleanup()
  process.exit(2)
}, 120_000).unref()

main()
  .catch((err) => {
    log(`error: ${err.stack ?? err}`)
    process.exitCode = 1
  })
  .finally(cleanup)
