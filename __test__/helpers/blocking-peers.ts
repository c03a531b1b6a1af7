/**
 * The blocking peers of __test__/peers/blocking (C, Python, Go): built once
 * per test run into a temporary directory, then run with a socket as fd 3.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const SOURCES = path.join(__dirname, '..', 'peers', 'blocking')

/** A peer program: its language and the command that runs it. */
export interface BlockingPeer {
  lang: 'c' | 'python' | 'go'
  command: string[]
}

/** What a peer prints when it is done (see peers/blocking/README.md). */
export interface PeerReport {
  lang: string
  got: string[]
  nonblock_seen: boolean
  fd_audit_ok: boolean
}

function build(command: string, args: string[]): void {
  const r = spawnSync(command, args, { cwd: SOURCES, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.error?.message ?? ''}${r.stderr}`)
}

/** Compiles the C and Go peers; the Python one runs as it is. */
export function buildPeers(): BlockingPeer[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-peers-'))
  const c = path.join(dir, 'c-peer')
  const go = path.join(dir, 'go-peer')
  build('gcc', ['-O1', '-Wall', '-Wextra', '-Werror', '-o', c, 'peer.c'])
  build('go', ['build', '-o', go, 'peer.go'])
  return [
    { lang: 'c', command: [c] },
    { lang: 'python', command: ['python3', path.join(SOURCES, 'peer.py')] },
    { lang: 'go', command: [go] },
  ]
}

/**
 * Starts `peer` with `fd` as its fd 3 for `rounds` rounds; the caller closes
 * its own copy of `fd` at once. Resolves with the peer's report once it has
 * exited (and rejects if it failed).
 */
export function runPeer(peer: BlockingPeer, fd: number, framed: boolean, rounds: number): Promise<PeerReport> {
  const [command, ...args] = peer.command as [string, ...string[]]
  const child = spawn(command, [...args, framed ? 'framed' : 'raw', String(rounds)], {
    stdio: ['ignore', 'pipe', 'pipe', fd],
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (c: Buffer) => (out += c))
  child.stderr!.on('data', (c: Buffer) => (err += c))
  return once(child, 'close').then(([code, signal]) => {
    if (code !== 0) throw new Error(`${peer.lang} peer exited with ${code ?? signal}: ${err}${out}`)
    return JSON.parse(out.trim()) as PeerReport
  })
}
