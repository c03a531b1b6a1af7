/**
 * The error thrown when the native addon cannot be loaded: it says which
 * prebuilt binary this platform needs and what to install, instead of the
 * loader's generic "Cannot find native binding".
 */
import { execSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import type { FdpassError } from '../errors'
import { makeError } from './make-error'

/** The platforms fdpass ships a prebuilt binary for (npm package `fdpass-<key>`). */
export const PREBUILT_PLATFORMS = [
  'linux-x64-gnu',
  'linux-arm64-gnu',
  'linux-x64-musl',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
] as const

/** Operating systems with `AF_UNIX` sockets and `SCM_RIGHTS`, though fdpass has no binary for every one. */
const UNIX_LIKE = new Set(['linux', 'darwin', 'freebsd', 'openbsd', 'netbsd', 'sunos', 'aix', 'android'])

/**
 * Whether this is a musl system, decided as the generated loader
 * (binding.js) decides it, so that the error names the package the loader
 * looked for: the text of /usr/bin/ldd (musl's names musl, glibc's does
 * not); without that file, the process report (glibc reports its version,
 * a musl process maps libc.musl-* or ld-musl-*); last, `ldd --version`.
 */
function isMusl(): boolean {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    // No ldd at that path: ask the process.
  }
  const report = process.report?.getReport() as
    { header?: { glibcVersionRuntime?: string }; sharedObjects?: unknown } | undefined
  if (report) {
    if (report.header?.glibcVersionRuntime) return false
    const objects = Array.isArray(report.sharedObjects) ? (report.sharedObjects as unknown[]) : []
    return objects.some((f) => typeof f === 'string' && (f.includes('libc.musl-') || f.includes('ld-musl-')))
  }
  try {
    return execSync('ldd --version', { encoding: 'utf8' }).includes('musl')
  } catch {
    return false
  }
}

/** `linux-x64-gnu`, `darwin-arm64`, `win32-x64`, ...: the platform as the binary packages name it. */
export function platformKey(): string {
  const base = `${process.platform}-${process.arch}`
  if (process.platform !== 'linux') return base
  return `${base}-${isMusl() ? 'musl' : 'gnu'}`
}

/** True for the error the napi-rs loader throws when no binary could be loaded. */
function isLoaderFailure(err: unknown): boolean {
  const message = err instanceof Error ? err.message : ''
  return message.startsWith('Cannot find native binding') || message.startsWith('Failed to load native binding')
}

/** Whether `request` resolves from the package root (where the loader sits). */
function resolves(request: string, root: string): boolean {
  try {
    require.resolve(request, { paths: [root] })
    return true
  } catch {
    return false
  }
}

/**
 * Turns a failure of the generated loader into an error that says what is
 * wrong and what to do. Any other error is returned as it is.
 *
 * @param err  what requiring the loader threw
 * @param root the package root, where the loader and a locally built binary sit
 * @param version this package's version, for the install hint
 */
export function explainLoadFailure(err: unknown, root: string, version: string): unknown {
  if (!isLoaderFailure(err)) return err
  const key = platformKey()
  const pkg = `fdpass-${key}`
  const override = process.env.NAPI_RS_NATIVE_LIBRARY_PATH
  let message: string
  if (override) {
    const why = existsSync(override) ? causeOf(err) : 'no such file'
    message =
      `fdpass could not load the native binary named by NAPI_RS_NATIVE_LIBRARY_PATH (${override}): ` +
      `${why}. Unset the variable to use the prebuilt binary for ${key}.`
  } else if (!UNIX_LIKE.has(process.platform)) {
    message =
      `fdpass has no prebuilt binary for ${key}: passing fds needs Unix domain sockets (Linux or macOS). ` +
      `Prebuilt binaries exist for ${PREBUILT_PLATFORMS.join(', ')}.`
  } else if (!(PREBUILT_PLATFORMS as readonly string[]).includes(key)) {
    message =
      `fdpass has no prebuilt binary for ${key}. Prebuilt binaries exist for ${PREBUILT_PLATFORMS.join(', ')}; ` +
      `elsewhere build the addon from the source repository (https://github.com/fdpass/fdpass) with Rust.`
  } else if (existsSync(join(root, `fdpass.${key}.node`))) {
    message =
      `fdpass could not load its native binary for ${key}: fdpass.${key}.node, built in the package directory, ` +
      `failed to load (${causeOf(err)}). Rebuild it (npm run build) or delete it to use ${pkg}.`
  } else if (resolves(`${pkg}/package.json`, root)) {
    message =
      `fdpass could not load its native binary for ${key}: the binary is installed but failed to load (${causeOf(err)}). ` +
      `Reinstall ${pkg}@${version}, the package for this platform.`
  } else {
    message =
      `fdpass could not load its native binary for ${key}: the package ${pkg} is not installed. ` +
      `It is an optional dependency of fdpass that npm installs on this platform; it is missing when ` +
      `optional dependencies were omitted (--omit=optional, --no-optional) or the lockfile was made on another platform. ` +
      `Run \`npm install\` with optional dependencies enabled, or \`npm install ${pkg}@${version}\`.`
  }
  const error: FdpassError = makeError(Error, 'ERR_FDPASS_NO_BINARY', message)
  error.cause = err
  return error
}

/**
 * The most telling message in the loader's error chain. The loader chains its
 * attempts through `cause`, the last one outermost; a "Cannot find module" of
 * a candidate that is simply absent says less than why a present one failed.
 */
function causeOf(err: unknown): string {
  const messages: string[] = []
  for (let e: unknown = err; e instanceof Error && messages.length < 32; e = e.cause) {
    messages.push(e.message.split('\n')[0] ?? e.message)
  }
  const attempts = messages.slice(1).reverse() // the first attempt first
  return attempts.find((m) => !m.startsWith('Cannot find module')) ?? attempts[0] ?? messages[0] ?? String(err)
}
