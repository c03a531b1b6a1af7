'use strict'
// Shared by the Node.js runners: the same protocol and JSON output as the C
// reference (bench/c/fdbench.c). A runner is invoked as
//   node <runner> <workload> <variant> <seconds> <reps>
// and prints one JSON line: { unit, ops: [per rep], perRep, fdsExpected,
// fdsBad, leakedFds, p50us?, p99us?, childExit? } or { skip: reason }.
const fs = require('node:fs')

function openFdCount() {
  return fs.readdirSync('/proc/self/fd').length - 1 // the directory's own fd
}

/**
 * The open fds before a run. Node opens its child-process signal pipe (and /dev/null for 'ignore' stdio)
 * on the first spawn and keeps them: open them now, not counted as leaks.
 */
function baselineFdCount() {
  require('node:child_process').spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' })
  return openFdCount()
}

let warmupSeconds = 0.3

/** The command line: <workload> <variant> <seconds per rep> <reps> [warm-up seconds]. */
function args() {
  const [workload, variant, seconds, reps, warmup] = process.argv.slice(2)
  if (warmup !== undefined) warmupSeconds = Number(warmup)
  return { workload, variant, seconds: Number(seconds), reps: Number(reps) }
}

/** Whether `fd` is the same open file as the stats `ref`. */
function sameFile(fd, ref) {
  try {
    const st = fs.fstatSync(fd)
    return st.ino === ref.ino && st.dev === ref.dev
  } catch {
    return false
  }
}

/**
 * Warm-up and calibration: runs `batch(n)` (sync or async) until the warm-up
 * time has passed (JIT, caches, a child process starting), n growing while a
 * batch takes under 20 ms, then measures once more; returns the n for a
 * batch of about `seconds`. n keeps growing through the whole warm-up, not
 * only until the first batch that takes 20 ms: that one can be slow only
 * because the child process was still starting, and a warm-up of tiny
 * batches never reaches the steady state of a streaming workload.
 * FDPASS_BENCH_N fixes n and skips both (for counting syscalls and
 * instructions per message).
 */
async function calibrate(batch, seconds) {
  if (process.env.FDPASS_BENCH_N) return Number(process.env.FDPASS_BENCH_N)
  const start = process.hrtime.bigint()
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9
  const measure = async (n) => {
    const t0 = process.hrtime.bigint()
    await batch(n)
    return Number(process.hrtime.bigint() - t0) / 1e9
  }
  let n = 20
  for (;;) {
    const took = await measure(n)
    if (took <= 0.02 && n < 5e7) n *= 4
    else if (elapsed() >= warmupSeconds) break
  }
  // Measured after the warm-up, not by the first (cold) batch.
  return Math.max(10, Math.round((n * seconds) / (await measure(n))))
}

/** Times one batch of n; returns ops/s. */
async function timed(batch, n) {
  const t0 = process.hrtime.bigint()
  await batch(n)
  return n / (Number(process.hrtime.bigint() - t0) / 1e9)
}

/**
 * The measurement of the two-process workloads (W3, W4), the same in every
 * runner: calibrates `batch`, asks the child for its count once (`endRep(0)`,
 * after which `onCalibrated` resets the runner's error count), then times
 * `reps` batches. For ping-pong each batch records one latency per round trip
 * into the array handed to `useLatencies` (null for streaming, whose batch
 * calls `endRep` itself), and each repetition ends with `endRep(n)`.
 * Returns `{ n, ops }`, plus `p50us` and `p99us` for ping-pong.
 */
async function measureTwoProcess({ batch, endRep, pingpong, seconds, reps, useLatencies, onCalibrated }) {
  // Warm up and calibrate on exactly the code the measured reps run: with
  // latencies recorded, and after one endRep. Otherwise the first measured
  // rep takes a new branch, V8 deoptimizes and recompiles on background
  // threads, and in the pinned workload those threads take CPU 0 from the
  // measured ones.
  const warm = pingpong
    ? (k) => {
        useLatencies(new Float64Array(k))
        return batch(k)
      }
    : batch
  if (pingpong) await endRep(0)
  const n = await calibrate(warm, seconds)
  if (pingpong) await endRep(0)
  onCalibrated()
  const out = { n, ops: [] }
  if (pingpong) Object.assign(out, { p50us: [], p99us: [] })
  for (let rep = 0; rep < reps; rep++) {
    const lat = pingpong ? new Float64Array(n) : null
    useLatencies(lat)
    out.ops.push(await timed(batch, n))
    if (pingpong) {
      await endRep(n)
      lat.sort()
      out.p50us.push(percentile(lat, 0.5))
      out.p99us.push(percentile(lat, 0.99))
    }
  }
  return out
}

/** The q-quantile of sorted latencies in µs, to the nanosecond. */
function percentile(sorted, q) {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] * 1000) / 1000
}

function print(result) {
  process.stdout.write(JSON.stringify(result) + '\n')
}

function skip(reason) {
  print({ skip: reason })
  process.exit(0)
}

module.exports = { openFdCount, baselineFdCount, args, sameFile, calibrate, timed, measureTwoProcess, print, skip }
