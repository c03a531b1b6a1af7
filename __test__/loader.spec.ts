/**
 * Loading the addon when no binary fits: an unsupported platform, a missing
 * platform package, a broken binary, a bad override. Each case runs in a child
 * process, against the built package (dist/ and the generated binding.js).
 */
import test from 'ava'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const root = path.join(__dirname, '..')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-loader-'))
const version: string = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version

/** This platform as the binary packages name it: linux-x64-gnu, darwin-arm64, ... */
function platformKey(): string {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } }
  return `linux-${process.arch}-${report.header?.glibcVersionRuntime ? 'gnu' : 'musl'}`
}
const key = platformKey()
const builtBinary = path.join(root, `fdpass.${key}.node`)

interface Outcome {
  loaded: boolean
  code?: string
  message?: string
  pair?: number
}

// Loads fdpass (by `require` or `import`) and prints what happened as JSON.
const PROBE_CJS = `
try {
  const { socketPair } = require(process.argv[1])
  console.log(JSON.stringify({ loaded: true, pair: socketPair().length }))
} catch (e) {
  console.log(JSON.stringify({ loaded: false, code: e.code, message: e.message }))
}`
const PROBE_ESM = `
try {
  const { socketPair } = await import(process.argv[1])
  console.log(JSON.stringify({ loaded: true, pair: socketPair().length }))
} catch (e) {
  console.log(JSON.stringify({ loaded: false, code: e.code, message: e.message }))
}`

function probe(
  target: string,
  opts: { esm?: boolean; preload?: string; env?: Record<string, string>; cwd?: string } = {},
): Outcome {
  const args: string[] = []
  if (opts.preload !== undefined) args.push('-r', opts.preload)
  if (opts.esm) args.push('--input-type=module')
  args.push('-e', opts.esm ? PROBE_ESM : PROBE_CJS, target)
  const env = { ...process.env, ...opts.env }
  if (opts.env?.NAPI_RS_NATIVE_LIBRARY_PATH === undefined) delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  const out = execFileSync(process.execPath, args, { cwd: opts.cwd ?? tmp, env, encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').pop() ?? '') as Outcome
}

/** A preload script that makes the process report another platform or arch. */
function fakePlatform(name: string, props: { platform?: string; arch?: string }): string {
  const file = path.join(tmp, `${name}.cjs`)
  const lines = Object.entries(props).map(
    ([prop, value]) => `Object.defineProperty(process, ${JSON.stringify(prop)}, { value: ${JSON.stringify(value)} })`,
  )
  fs.writeFileSync(file, lines.join('\n') + '\n')
  return file
}

/**
 * A project with fdpass installed as a user gets it from the registry, minus
 * the locally built binary: node_modules/fdpass holds package.json, binding.js
 * and dist/. `platformPackage` adds node_modules/fdpass-<key> holding `binary`.
 */
function project(name: string, platformPackage?: { binary: Buffer }): string {
  const dir = path.join(tmp, name)
  const pkg = path.join(dir, 'node_modules', 'fdpass')
  fs.mkdirSync(pkg, { recursive: true })
  for (const file of ['package.json', 'binding.js']) fs.copyFileSync(path.join(root, file), path.join(pkg, file))
  fs.cpSync(path.join(root, 'dist'), path.join(pkg, 'dist'), { recursive: true })
  if (platformPackage !== undefined) {
    const platDir = path.join(dir, 'node_modules', `fdpass-${key}`)
    fs.mkdirSync(platDir, { recursive: true })
    const main = `fdpass.${key}.node`
    fs.writeFileSync(path.join(platDir, 'package.json'), JSON.stringify({ name: `fdpass-${key}`, version, main }))
    fs.writeFileSync(path.join(platDir, main), platformPackage.binary)
  }
  return dir
}

test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

test('the package loads here (control for the cases below)', (t) => {
  t.deepEqual(probe(root), { loaded: true, pair: 2 })
})

test('the loader and the ERR_FDPASS_NO_BINARY message pick the same binary, that of the running C library', (t) => {
  const { NAPI_RS_NATIVE_LIBRARY_PATH: _override, ...withoutOverride } = process.env
  // The loader decides musl from /usr/bin/ldd, src/internal/no-binary.ts the same way;
  // `key` above comes from the process itself (a glibc process reports its
  // version). A musl Node on this suite's run for musl must load the musl binary.
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      `require(process.argv[1])
       const { platformKey } = require(process.argv[1] + '/dist/src/internal/no-binary.js')
       const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node')).map((f) => require('path').basename(f))
       console.log(JSON.stringify({ loaded, key: platformKey() }))`,
      root,
    ],
    // Without the override of a sanitizer run (scripts/sanitize.sh), which
    // names a binary of its own: the choice of the loader is what is checked.
    { cwd: tmp, encoding: 'utf8', env: withoutOverride },
  )
  t.deepEqual(JSON.parse(out), { loaded: [`fdpass.${key}.node`], key })
})

for (const esm of [false, true]) {
  const how = esm ? 'import' : 'require'

  test(`${how} on an OS without Unix domain sockets says there is no binary for it`, (t) => {
    const preload = fakePlatform(`win32-${how}`, { platform: 'win32', arch: 'x64' })
    const r = probe('fdpass', { esm, preload, cwd: project(`win32-${how}`) })
    t.false(r.loaded)
    t.is(r.code, 'ERR_FDPASS_NO_BINARY')
    t.is(
      r.message,
      'fdpass has no prebuilt binary for win32-x64: passing fds needs Unix domain sockets (Linux or macOS). ' +
        'Prebuilt binaries exist for linux-x64-gnu, linux-arm64-gnu, linux-x64-musl, linux-arm64-musl, darwin-x64, darwin-arm64.',
    )
  })

  test(`${how} with the platform package missing names the package to install`, (t) => {
    const dir = project(`missing-${how}`)
    const r = probe('fdpass', { esm, cwd: dir })
    t.false(r.loaded)
    t.is(r.code, 'ERR_FDPASS_NO_BINARY')
    t.true(
      r.message?.startsWith(
        `fdpass could not load its native binary for ${key}: the package fdpass-${key} is not installed.`,
      ),
      r.message,
    )
    t.true(r.message?.includes(`npm install fdpass-${key}@${version}`), r.message)
    t.false(r.message?.includes('Cannot find module'), r.message)
  })
}

if (process.platform === 'linux') {
  test('the message names the libc the loader chose from /usr/bin/ldd, even where the process has the other one', (t) => {
    // A preload gives the loader (and src/internal/no-binary.ts) an ldd of the other
    // C library than this process's: the loader then looks for that
    // package, and the message must name that package, not the process's.
    const other = key.endsWith('-gnu') ? 'musl' : 'gnu'
    const ldd =
      other === 'musl'
        ? '#!/bin/sh\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\n'
        : '#! /bin/bash\n# ldd for the GNU C Library\nTEXTDOMAIN=libc\n'
    const preload = path.join(tmp, `ldd-${other}.cjs`)
    fs.writeFileSync(
      preload,
      `const fs = require('fs')
       const readFileSync = fs.readFileSync
       fs.readFileSync = function (file, ...rest) {
         return file === '/usr/bin/ldd' ? ${JSON.stringify(ldd)} : readFileSync.call(this, file, ...rest)
       }\n`,
    )
    const otherKey = `linux-${process.arch}-${other}`
    const r = probe('fdpass', { preload, cwd: project(`ldd-${other}`) })
    t.false(r.loaded)
    t.is(r.code, 'ERR_FDPASS_NO_BINARY')
    t.true(
      r.message?.startsWith(
        `fdpass could not load its native binary for ${otherKey}: the package fdpass-${otherKey} is not installed.`,
      ),
      r.message,
    )
  })
}

test('a Unix platform without a prebuilt binary is named, with the ones that exist', (t) => {
  const preload = fakePlatform('riscv64', { arch: 'riscv64' })
  const r = probe(root, { preload })
  t.false(r.loaded)
  t.is(r.code, 'ERR_FDPASS_NO_BINARY')
  t.regex(
    r.message ?? '',
    /^fdpass has no prebuilt binary for (linux-riscv64-(gnu|musl)|darwin-riscv64)\. Prebuilt binaries exist for linux-x64-gnu, /,
  )
})

test('the binary loads from the platform package when the package has none of its own', (t) => {
  const dir = project('with-platform-package', { binary: fs.readFileSync(builtBinary) })
  t.deepEqual(probe('fdpass', { cwd: dir }), { loaded: true, pair: 2 })
  t.deepEqual(probe('fdpass', { cwd: dir, esm: true }), { loaded: true, pair: 2 })
})

test('a platform package whose binary does not load says so and what to reinstall', (t) => {
  const dir = project('broken-platform-package', { binary: Buffer.from('not a shared object') })
  const r = probe('fdpass', { cwd: dir })
  t.false(r.loaded)
  t.is(r.code, 'ERR_FDPASS_NO_BINARY')
  t.true(
    r.message?.startsWith(
      `fdpass could not load its native binary for ${key}: the binary is installed but failed to load (`,
    ),
    r.message,
  )
  t.true(r.message?.includes(`Reinstall fdpass-${key}@${version}`), r.message)
})

test('a broken binary built into the package directory says to rebuild it', (t) => {
  const dir = project('broken-local-build')
  fs.writeFileSync(path.join(dir, 'node_modules', 'fdpass', `fdpass.${key}.node`), 'not a shared object')
  const r = probe('fdpass', { cwd: dir })
  t.false(r.loaded)
  t.is(r.code, 'ERR_FDPASS_NO_BINARY')
  t.true(
    r.message?.startsWith(
      `fdpass could not load its native binary for ${key}: fdpass.${key}.node, built in the package directory, failed to load (`,
    ),
    r.message,
  )
  t.true(r.message?.endsWith(`Rebuild it (npm run build) or delete it to use fdpass-${key}.`), r.message)
})

test('NAPI_RS_NATIVE_LIBRARY_PATH naming a missing file is reported as such', (t) => {
  const missing = path.join(tmp, 'no-such-dir', `fdpass.${key}.node`)
  const r = probe(root, { env: { NAPI_RS_NATIVE_LIBRARY_PATH: missing } })
  t.false(r.loaded)
  t.is(r.code, 'ERR_FDPASS_NO_BINARY')
  t.is(
    r.message,
    `fdpass could not load the native binary named by NAPI_RS_NATIVE_LIBRARY_PATH (${missing}): no such file. ` +
      `Unset the variable to use the prebuilt binary for ${key}.`,
  )
})

test('NAPI_RS_NATIVE_LIBRARY_PATH naming the built binary loads it', (t) => {
  t.deepEqual(probe(root, { env: { NAPI_RS_NATIVE_LIBRARY_PATH: builtBinary } }), { loaded: true, pair: 2 })
})
