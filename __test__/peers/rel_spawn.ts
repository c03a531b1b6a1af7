/**
 * Spawning the peers of the reliability, hostile-peer and soak tests: each
 * child gets an optional socket as its fd 3, may run as another user or under
 * a lower RLIMIT_NOFILE, prints JSON lines (the last one is its report, with
 * its own fd audit), and is killed if it outlives its deadline.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import * as path from 'node:path'

import { slowdown } from '../helpers/emulation.js'

export const NODE_PEER = path.join(__dirname, 'rel_node_peer.js')
export const PY_PEER = path.join(__dirname, 'rel_py_peer.py')
export const HOSTILE_PEER = path.join(__dirname, 'hostile_peer.py')

export interface Child {
  child: ChildProcess
  /** Resolves with the first JSON line that has `ready: true`. */
  ready: Promise<Record<string, unknown>>
  /** Resolves with the last JSON line once the child exits with status 0. */
  report: Promise<Record<string, unknown>>
  /** Everything the child printed on stderr so far. */
  stderr(): string
}

export interface RunOptions {
  /** A socket to hand down as fd 3 (the parent keeps its own copy). */
  socket?: number
  /** Run as this user and group. */
  uid?: number
  gid?: number
  /** Run under this RLIMIT_NOFILE (soft and hard), through prlimit(1). */
  nofile?: number
  /** Kill the child after this many ms (default 60 s). */
  timeoutMs?: number
  /** Wrap the command, e.g. ['strace', '-f', ...]. */
  wrapper?: string[]
  /** Give the child a pipe as its stdin (`child.stdin`), e.g. to tell it when to go on. */
  stdin?: boolean
}

export function run(command: string, args: string[], options: RunOptions = {}): Child {
  const stdio: Array<'ignore' | 'pipe' | number> = [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe']
  if (options.socket !== undefined) stdio.push(options.socket)
  let argv = [command, ...args]
  if (options.nofile !== undefined) argv = ['prlimit', `--nofile=${options.nofile}:${options.nofile}`, ...argv]
  if (options.wrapper) argv = [...options.wrapper, ...argv]
  const spawnOptions: SpawnOptions = { stdio }
  if (options.uid !== undefined) spawnOptions.uid = options.uid
  if (options.gid !== undefined) spawnOptions.gid = options.gid
  const child = spawn(argv[0] as string, argv.slice(1), spawnOptions)
  let out = ''
  let err = ''
  let onReady: ((v: Record<string, unknown>) => void) | undefined
  let onReadyFail: ((e: Error) => void) | undefined
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    onReady = resolve
    onReadyFail = reject
  })
  ready.catch(() => {})
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk
    for (const line of out.split('\n')) {
      if (!line.includes('"ready"')) continue
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>
        if (parsed.ready === true) onReady?.(parsed)
      } catch {
        // an incomplete line: wait for the rest
      }
    }
  })
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk))
  // Under emulation a Node peer takes seconds to start and everything runs slower.
  const timer = setTimeout(() => child.kill('SIGKILL'), (options.timeoutMs ?? 60_000) * slowdown)
  const report = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      onReadyFail?.(new Error(`child exited before it was ready: ${code ?? signal}\n${err}`))
      if (code !== 0) {
        reject(new Error(`${argv.join(' ')} exited with ${code ?? signal}:\n${out}\n${err}`))
        return
      }
      const last = out.trim().split('\n').pop() as string
      try {
        resolve(JSON.parse(last) as Record<string, unknown>)
      } catch {
        reject(new Error(`no JSON report from ${argv.join(' ')}:\n${out}\n${err}`))
      }
    })
  })
  report.catch(() => {})
  return { child, ready, report, stderr: () => err }
}

export function runNode(args: string[], options: RunOptions & { nodeArgs?: string[] } = {}): Child {
  return run(process.execPath, [...(options.nodeArgs ?? []), NODE_PEER, ...args], options)
}

export function runPython(script: string, args: string[], options: RunOptions = {}): Child {
  return run('python3', [script, ...args], options)
}

/** Rejects with `what` if `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = ms * slowdown
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${limit} ms: ${what}`)), limit)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
