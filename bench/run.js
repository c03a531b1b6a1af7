#!/usr/bin/env node
'use strict'
/**
 * The fdpass benchmark suite (`npm run bench`): fdpass side by side with a C
 * sendmsg/recvmsg reference, Python's socket.send_fds/recv_fds, Node's
 * child_process.send(msg, socket) and usocket, on the workloads of issue 4.
 * See bench/README.md.
 *
 *   node bench/run.js            full run: results in bench/results/
 *   node bench/run.js --quick    a few seconds: asserts that every fd arrives,
 *                                prints ratios only, writes to .bench-out/
 */
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { renderSvg } = require('./chart')

const ROOT = path.resolve(__dirname, '..')
const quick = process.argv.includes('--quick')
const OUT = quick ? path.join(ROOT, '.bench-out') : path.join(__dirname, 'results')
const BUILD = path.join(ROOT, '.bench-out')

const say = (...a) => console.log(...a)

if (process.platform !== 'linux') {
  say(
    `bench: skipped: the suite measures Linux (perf, /proc, MSG_CMSG_CLOEXEC, seqpacket); this is ${process.platform}`,
  )
  process.exit(0)
}

const settings = quick
  ? { rounds: 1, reps: 1, seconds: 0.03, warmup: 0.15 }
  : { rounds: 5, reps: 2, seconds: 0.15, warmup: 0.3 }

const WORKLOADS = [
  { id: 'w1-stream', w: 'w1', variant: 'stream', label: 'W1 1 fd round trip, stream', quick: true },
  { id: 'w1-seqpacket', w: 'w1', variant: 'seqpacket', label: 'W1 1 fd round trip, seqpacket' },
  { id: 'w1-dgram', w: 'w1', variant: 'dgram', label: 'W1 1 fd round trip, dgram' },
  { id: 'w2-16', w: 'w2', variant: '16', label: 'W2 16 fds per message' },
  { id: 'w2-253', w: 'w2', variant: '253', label: 'W2 253 fds per message', quick: true },
  { id: 'w3-pinned', w: 'w3', variant: '-', pin: true, label: 'W3 ping-pong, pinned to CPU 0', quick: true },
  { id: 'w3-unpinned', w: 'w3', variant: '-', label: 'W3 ping-pong, unpinned' },
  { id: 'w4', w: 'w4', variant: '-', label: 'W4 streaming 1 fd per message', quick: true },
  // A byte stream (bytes/s) with one fd every 64 KiB: the Duplex face (FdStream) against C's
  // recvmsg into a ring. Only the rows built for a byte stream run it.
  {
    id: 'w5-64',
    w: 'w5',
    variant: '64',
    label: 'W5 byte stream, 1 fd per 64 KiB',
    quick: true,
    impls: ['c', 'c-threads', 'fdpass-stream'],
  },
].filter((w) => !quick || w.quick)

// ---------------------------------------------------------------- setup

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts })
}

function version(cmd, args, pick = (s) => s.split('\n')[0].trim()) {
  const r = run(cmd, args)
  return r.status === 0 ? pick(r.stdout || r.stderr) : null
}

fs.mkdirSync(BUILD, { recursive: true })
fs.mkdirSync(OUT, { recursive: true })

const fdbench = path.join(BUILD, 'fdbench')
{
  const r = run('gcc', ['-O2', '-Wall', '-pthread', '-o', fdbench, path.join(__dirname, 'c', 'fdbench.c')])
  if (r.status !== 0) {
    say(`bench: cannot compile the C reference with gcc:\n${r.stderr || r.error}`)
    process.exit(1)
  }
}

try {
  require(ROOT)
} catch (err) {
  say(`bench: fdpass is not built (run npm run build): ${err.message}`)
  process.exit(1)
}

/** Installs usocket into bench/.deps (full runs only); returns why not, or null. */
function ensureUsocket() {
  const dir = path.join(__dirname, '.deps')
  const probe = () =>
    run(process.execPath, ['-e', `require(${JSON.stringify(path.join(dir, 'node_modules', 'usocket'))})`])
  if (probe().status === 0) return null
  if (quick) return 'not installed (a full run installs it into bench/.deps)'
  say('bench: installing usocket into bench/.deps (npm + node-gyp) ...')
  fs.mkdirSync(dir, { recursive: true })
  const npm = run('npm', [
    'install',
    '--prefix',
    dir,
    '--no-save',
    '--no-audit',
    '--no-fund',
    '--ignore-scripts',
    'usocket@1.1.0',
  ])
  if (npm.status !== 0) return `npm install failed: ${(npm.stderr || '').trim().split('\n').slice(-2).join(' ')}`
  // node-gyp needs Node's headers; nodejs.org may be unreachable, so point it
  // at the headers installed with this Node.
  const prefix = path.dirname(path.dirname(fs.realpathSync(process.execPath)))
  const nodedir = [prefix, '/usr', '/usr/local'].find((d) =>
    fs.existsSync(path.join(d, 'include', 'node', 'node_api.h')),
  )
  if (!nodedir) return 'node-gyp needs Node headers (include/node) and none were found next to this Node'
  const gypBin = path.join(dir, 'node_modules', '.bin', 'node-gyp')
  const gyp = fs.existsSync(gypBin) ? [gypBin] : ['npx', '--yes', 'node-gyp']
  const build = run(gyp[0], [...gyp.slice(1), 'rebuild', `--nodedir=${nodedir}`], {
    cwd: path.join(dir, 'node_modules', 'usocket'),
  })
  if (build.status !== 0)
    return `node-gyp rebuild failed: ${(build.stderr || '').trim().split('\n').slice(-2).join(' ')}`
  return probe().status === 0 ? null : `built but does not load: ${probe().stderr.trim().split('\n')[0]}`
}
const usocketProblem = ensureUsocket()

const runner = (name) => path.join(__dirname, 'runners', name)
// The interpreter itself, not a launcher script (pyenv shims are shell
// scripts, which valgrind would measure instead).
const python = version('python3', ['-c', 'import sys; print(sys.executable)']) || 'python3'
const IMPLS = [
  { id: 'c', name: 'C sendmsg/recvmsg', cmd: [fdbench], strict: true },
  {
    id: 'c-threads',
    name: 'C, process with a 2nd thread',
    cmd: [fdbench],
    env: { FDBENCH_IDLE_THREAD: '1' },
    strict: true,
    quick: false,
  },
  {
    id: 'fdpass-raw',
    name: 'fdpass raw sync (SyncSocket)',
    cmd: [process.execPath, runner('fdpass-raw.js')],
    strict: true,
  },
  {
    id: 'fdpass-numbers',
    name: 'fdpass raw sync (fd numbers)',
    cmd: [process.execPath, runner('fdpass-raw.js')],
    env: { FDBENCH_API: 'numbers' },
    strict: true,
  },
  { id: 'fdpass-async', name: 'fdpass FdSocket', cmd: [process.execPath, runner('fdpass-async.js')], strict: true },
  {
    id: 'fdpass-many',
    name: 'fdpass FdSocket (receiveMany)',
    cmd: [process.execPath, runner('fdpass-async.js')],
    env: { FDBENCH_API: 'many' },
    strict: true,
  },
  // The Duplex face, on the byte-stream workload only (W5).
  {
    id: 'fdpass-stream',
    name: 'fdpass FdStream (Duplex)',
    cmd: [process.execPath, runner('fdpass-stream.js')],
    strict: true,
    workloads: ['w5'],
  },
  { id: 'python', name: 'Python send_fds', cmd: [python, runner('python.py')] },
  { id: 'node-cp', name: 'Node child_process.send', cmd: [process.execPath, runner('node-child-process.js')] },
  { id: 'usocket', name: 'usocket', cmd: [process.execPath, runner('usocket.js')], skip: usocketProblem },
].filter((i) => !quick || i.quick !== false)

// ---------------------------------------------------------------- measuring

/** One runner invocation; returns its parsed JSON line. */
function invoke(impl, wl, { reps, seconds, warmup }, env = {}) {
  const cmd = wl.pin ? ['taskset', '-c', '0', ...impl.cmd] : impl.cmd
  const r = run(cmd[0], [...cmd.slice(1), wl.w, wl.variant, String(seconds), String(reps), String(warmup)], {
    env: { ...process.env, ...impl.env, ...env },
    timeout: 180_000,
  })
  const line = (r.stdout || '').trim().split('\n').pop()
  try {
    return JSON.parse(line)
  } catch {
    return {
      error: `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}: ${(r.stderr || r.error || line || '').toString().trim().split('\n').slice(-3).join(' | ')}`,
    }
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Whether `impl` runs workload `wl` (W5 is for the byte-stream rows only, and they for it only). */
const applies = (impl, wl) =>
  (!wl.impls || wl.impls.includes(impl.id)) && (!impl.workloads || impl.workloads.includes(wl.w))

const results = {} // workload id -> impl id -> row
for (const wl of WORKLOADS) {
  results[wl.id] = {}
  for (const impl of IMPLS) {
    results[wl.id][impl.id] = !applies(impl, wl)
      ? { status: 'n/a' }
      : impl.skip
        ? { status: 'skip', reason: impl.skip }
        : { status: 'ok', ops: [], p50us: [], p99us: [], fdsBad: 0, fdsExpected: 0, leakedFds: 0, childExit: [] }
  }
}

const started = Date.now()
const loadBefore = os.loadavg()
for (let round = 0; round < settings.rounds; round++) {
  for (const wl of WORKLOADS) {
    // Every implementation once per round, interleaved, so that a burst of
    // load on this shared machine hits all of them alike.
    for (const impl of IMPLS) {
      const row = results[wl.id][impl.id]
      if (row.status !== 'ok') continue
      const out = invoke(impl, wl, settings)
      if (out.skip || out.error) {
        results[wl.id][impl.id] = out.skip
          ? { status: 'skip', reason: out.skip }
          : { status: 'error', reason: out.error }
        continue
      }
      row.unit = out.unit
      row.ops.push(...out.ops)
      if (out.p50us) row.p50us.push(...out.p50us)
      if (out.p99us) row.p99us.push(...out.p99us)
      row.fdsBad += out.fdsBad
      row.fdsExpected += out.fdsExpected
      row.leakedFds += out.leakedFds
      if (out.childExit !== undefined) row.childExit.push(out.childExit)
    }
  }
  if (!quick) say(`bench: round ${round + 1}/${settings.rounds} done (${((Date.now() - started) / 1000).toFixed(0)} s)`)
}

for (const wl of WORKLOADS) {
  const c = results[wl.id].c
  for (const impl of IMPLS) {
    const row = results[wl.id][impl.id]
    if (row.status !== 'ok') continue
    row.median = median(row.ops)
    row.min = Math.min(...row.ops)
    row.max = Math.max(...row.ops)
    row.reps = row.ops.length
    if (row.p50us.length) row.p50usMedian = median(row.p50us)
    else delete row.p50us
    if (row.p99us.length) row.p99usMedian = median(row.p99us)
    else delete row.p99us
    if (c.status === 'ok') row.ratio = row.median / c.median
    row.correct = row.fdsBad === 0 && row.leakedFds === 0 && row.childExit.every((x) => x === 0)
  }
}

const loadAfter = os.loadavg()
const round2 = (x) => Math.round(x * 100) / 100

// ---------------------------------------------------------------- extras (full runs)

/** Per-message figures from two runs of different lengths (start-up cancels out). */
function perMessage(impl, wl, measure, n1, n2) {
  const a = measure(impl, wl, n1)
  const b = measure(impl, wl, n2)
  if (!a || !b) return null
  const out = {}
  for (const k of Object.keys(b)) {
    const d = ((b[k] || 0) - (a[k] || 0)) / (n2 - n1)
    // Below 0.05 per message (or negative) is start-up and event-loop noise.
    if (d >= 0.05) out[k] = Math.round(d * 100) / 100
  }
  return out
}

function syscallCounts(impl, wl, n) {
  const file = path.join(BUILD, `perf-${impl.id}-${n}.txt`)
  const cmd = ['perf', 'stat', '-x,', '-e', 'syscalls:sys_enter_*', '-o', file, ...impl.cmd, wl.w, wl.variant, '0', '1']
  const r = run(cmd[0], cmd.slice(1), { env: { ...process.env, ...impl.env, FDPASS_BENCH_N: String(n) } })
  if (r.status !== 0 || !fs.existsSync(file)) return null
  const counts = {}
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const [value, , event] = line.split(',')
    const m = /syscalls:sys_enter_(\w+)/.exec(event || '')
    if (m && /^\d+$/.test(value)) counts[m[1]] = Number(value)
  }
  return counts
}

function instructions(impl, wl, n) {
  const file = path.join(BUILD, `callgrind-${impl.id}-${n}.out`)
  const cmd = ['valgrind', '--tool=callgrind', `--callgrind-out-file=${file}`, ...impl.cmd, wl.w, wl.variant, '0', '1']
  const r = run(cmd[0], cmd.slice(1), {
    env: { ...process.env, ...impl.env, FDPASS_BENCH_N: String(n) },
    timeout: 900_000,
  })
  const m = /Collected : (\d+)/.exec(r.stderr || '')
  return r.status === 0 && m ? { instructions: Number(m[1]) } : null
}

const extras = {}
if (!quick) {
  const w1 = WORKLOADS.find((w) => w.id === 'w1-stream')
  const usable = IMPLS.filter((i) => results['w1-stream'][i.id].status === 'ok')
  if (run('perf', ['--version']).status === 0) {
    say('bench: syscalls per W1 round trip (perf stat) ...')
    extras.syscallsPerRoundTrip = {}
    for (const impl of usable) extras.syscallsPerRoundTrip[impl.id] = perMessage(impl, w1, syscallCounts, 20000, 40000)
  } else extras.syscallsPerRoundTrip = { skipped: 'perf is not installed' }
  if (run('valgrind', ['--version']).status === 0) {
    say('bench: instructions per W1 round trip (callgrind) ...')
    extras.instructionsPerRoundTrip = {}
    for (const impl of usable) {
      // Both runs include start-up and JIT warm-up; 10 000 round trips are
      // enough for the JIT to settle, so the difference is steady state.
      const r = perMessage(impl, w1, instructions, 10000, 30000)
      extras.instructionsPerRoundTrip[impl.id] = r ? r.instructions : null
    }
  } else extras.instructionsPerRoundTrip = { skipped: 'valgrind is not installed' }
}
{
  // RSS added by loading fdpass (require, which also binds the native addon).
  const script = `const before = process.memoryUsage().rss; require(${JSON.stringify(ROOT)}); global.gc && gc(); console.log(process.memoryUsage().rss - before)`
  const samples = []
  for (let i = 0; i < (quick ? 1 : 5); i++) {
    const r = run(process.execPath, ['-e', script])
    if (r.status === 0) samples.push(Number(r.stdout.trim()))
  }
  extras.rssAddedMB = samples.length ? Math.round((median(samples) / 2 ** 20) * 100) / 100 : null
  const addon = fs.readdirSync(ROOT).find((f) => /^fdpass\..*\.node$/.test(f))
  extras.nodeBinary = addon ? { file: addon, bytes: fs.statSync(path.join(ROOT, addon)).size } : null
}

// ---------------------------------------------------------------- report

const pkg = require(path.join(ROOT, 'package.json'))
const git = version('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])
const usocketPkg = path.join(__dirname, '.deps', 'node_modules', 'usocket', 'package.json')
const meta = {
  date: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  settings,
  machine: {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    arch: process.arch,
    // Other work on the machine during the run (1-minute load averages at
    // the start and the end of the measurements).
    loadAverage: { start: round2(loadBefore[0]), end: round2(loadAfter[0]) },
  },
  versions: {
    fdpass: `${pkg.version}${git ? ` (${git})` : ''}`,
    node: process.version,
    python: version('python3', ['--version']),
    gcc: version('gcc', ['--version']),
    usocket: fs.existsSync(usocketPkg) ? JSON.parse(fs.readFileSync(usocketPkg, 'utf8')).version : null,
  },
}
const report = {
  meta,
  implementations: IMPLS.map(({ id, name }) => ({ id, name })),
  workloads: WORKLOADS.map(({ id, label, pin }) => ({ id, label, pinned: !!pin })),
  results,
  extras,
}

const fmtRate = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0))
function cell(row) {
  if (row.status === 'n/a') return '—'
  if (row.status === 'skip') return 'skipped'
  if (row.status === 'error') return 'error'
  const ratio = row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}× `
  const wrong = []
  if (row.fdsBad) wrong.push(`${row.fdsBad} of ${row.fdsExpected} fds lost or invalid`)
  if (row.leakedFds) wrong.push(`${row.leakedFds} fds leaked`)
  if (row.childExit.some((x) => x !== 0)) wrong.push(`child exit ${row.childExit.find((x) => x !== 0)}`)
  return `${ratio}${fmtRate(row.median)}/s${wrong.length ? ` ⚠ ${wrong.join(', ')}` : ''}`
}

function markdown() {
  const lines = []
  lines.push(`# fdpass benchmark (${meta.mode} run)`, '')
  lines.push(
    `${meta.date} · ${meta.machine.cpus} × ${meta.machine.cpu} · load ${meta.machine.loadAverage.start}→${meta.machine.loadAverage.end} · ${meta.machine.kernel} · fdpass ${meta.versions.fdpass} · Node ${meta.versions.node} · ${meta.versions.python} · ${meta.versions.gcc}${meta.versions.usocket ? ` · usocket ${meta.versions.usocket}` : ''}`,
    '',
  )
  lines.push(
    `Ratio to the C reference of the same run (higher is faster), then the median rate. Median of ${settings.rounds * settings.reps} repetitions (${settings.rounds} interleaved rounds × ${settings.reps}) after warm-up.`,
    '',
  )
  lines.push(`| workload | ${IMPLS.map((i) => i.name).join(' | ')} |`)
  lines.push(`|---|${IMPLS.map(() => '---').join('|')}|`)
  for (const wl of WORKLOADS)
    lines.push(`| ${wl.label} | ${IMPLS.map((i) => cell(results[wl.id][i.id])).join(' | ')} |`)
  lines.push('', '### Spread (min – median – max, per second)', '')
  lines.push(`| workload | ${IMPLS.map((i) => i.name).join(' | ')} |`)
  lines.push(`|---|${IMPLS.map(() => '---').join('|')}|`)
  for (const wl of WORKLOADS) {
    lines.push(
      `| ${wl.label} | ${IMPLS.map((i) => {
        const r = results[wl.id][i.id]
        return r.status === 'ok' ? `${fmtRate(r.min)} – ${fmtRate(r.median)} – ${fmtRate(r.max)}` : r.status
      }).join(' | ')} |`,
    )
  }
  const w3 = WORKLOADS.filter((w) => w.w === 'w3')
  if (w3.length) {
    lines.push('', '### W3 round-trip latency, µs (p50 / p99, medians over repetitions)', '')
    lines.push(`| workload | ${IMPLS.map((i) => i.name).join(' | ')} |`)
    lines.push(`|---|${IMPLS.map(() => '---').join('|')}|`)
    for (const wl of w3) {
      lines.push(
        `| ${wl.label} | ${IMPLS.map((i) => {
          const r = results[wl.id][i.id]
          return r.status === 'ok' && r.p50usMedian !== undefined
            ? `${r.p50usMedian.toFixed(1)} / ${r.p99usMedian.toFixed(1)}`
            : r.status === 'ok'
              ? '–'
              : r.status
        }).join(' | ')} |`,
      )
    }
  }
  const notes = []
  for (const wl of WORKLOADS) {
    for (const i of IMPLS) {
      const r = results[wl.id][i.id]
      if (r.status !== 'ok' && r.reason && !notes.some((n) => n.includes(`${i.name}: ${r.reason}`)))
        notes.push(`- ${i.name}: ${r.reason}${r.status === 'error' ? ` (${wl.label})` : ''}`)
    }
  }
  if (extras.syscallsPerRoundTrip || extras.instructionsPerRoundTrip) {
    lines.push('', '### Per W1 stream round trip', '')
    lines.push('| implementation | syscalls (perf stat, exact) | user-space instructions (callgrind) |')
    lines.push('|---|---|---|')
    for (const i of IMPLS) {
      const s = extras.syscallsPerRoundTrip?.[i.id]
      const ins = extras.instructionsPerRoundTrip?.[i.id]
      if (s === undefined && ins === undefined) continue
      const sys = s
        ? Object.entries(s)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')
        : '–'
      lines.push(`| ${i.name} | ${sys} | ${typeof ins === 'number' ? Math.round(ins).toLocaleString('en-US') : '–'} |`)
    }
  }
  lines.push(
    '',
    `Loading fdpass adds ${extras.rssAddedMB ?? '?'} MB RSS; the addon ${extras.nodeBinary ? `${extras.nodeBinary.file} is ${(extras.nodeBinary.bytes / 1024).toFixed(0)} KiB` : 'was not found'}.`,
  )
  if (notes.length) lines.push('', 'Skipped or failed rows:', '', ...notes)
  return lines.join('\n') + '\n'
}

const stamp = meta.date.slice(0, 10)
const base = quick ? 'quick' : `full-${stamp}`
fs.writeFileSync(path.join(OUT, `${base}.json`), JSON.stringify(report, null, 2) + '\n')
const md = markdown()
if (!quick) {
  fs.writeFileSync(path.join(OUT, `${base}.md`), md)
  fs.writeFileSync(path.join(OUT, `${base}.svg`), renderSvg(report))
}

// ---------------------------------------------------------------- verdict

if (quick) {
  say('bench --quick: ratios to C (timing is noisy here; not asserted)')
  for (const wl of WORKLOADS) {
    const parts = IMPLS.filter((i) => results[wl.id][i.id].status !== 'n/a').map((i) => {
      const r = results[wl.id][i.id]
      return r.status === 'ok'
        ? `${i.id} ${r.ratio !== undefined ? r.ratio.toFixed(2) + '×' : '?'}${r.correct ? '' : ' ⚠'}`
        : `${i.id} ${r.status}`
    })
    say(`  ${wl.label.padEnd(32)} ${parts.join('  ')}`)
  }
} else {
  say(md)
  say(`bench: wrote ${path.relative(ROOT, path.join(OUT, base))}.{json,md,svg}`)
}
{
  const seen = new Set()
  for (const i of IMPLS) {
    for (const wl of WORKLOADS) {
      const r = results[wl.id][i.id]
      const line = `bench: ${i.name} ${r.status === 'error' ? `failed (${wl.label})` : 'skipped'}: ${r.reason}`
      if (
        r.status !== 'ok' &&
        r.status !== 'n/a' &&
        !seen.has(line) &&
        (r.status === 'error' || !seen.has(`${i.id}:${r.reason}`))
      ) {
        seen.add(line)
        seen.add(`${i.id}:${r.reason}`)
        say(line)
      }
    }
  }
}

// Correctness is asserted: every fd of the C and fdpass rows delivered and
// valid, no fd leaked, children clean. Other libraries' failures are findings,
// shown in the table.
const failures = []
for (const wl of WORKLOADS) {
  for (const i of IMPLS.filter((x) => x.strict)) {
    const r = results[wl.id][i.id]
    if (r.status === 'error') failures.push(`${i.name}, ${wl.label}: ${r.reason}`)
    else if (r.status === 'ok' && !r.correct) failures.push(`${i.name}, ${wl.label}: ${cell(r)}`)
    else if (r.status === 'skip') failures.push(`${i.name}, ${wl.label}: skipped (${r.reason})`)
  }
}
if (failures.length) {
  say(`bench: FAILED correctness checks:\n  ${failures.join('\n  ')}`)
  process.exit(1)
}
say('bench: every fd of the C and fdpass rows arrived valid; no fd leaked')
