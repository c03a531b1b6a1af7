/**
 * Hostile peers, written in Python (peers/hostile_peer.py),
 * against a framed FdSocket and an FdServer: garbage, lying headers, fds on
 * the wrong bytes, huge lengths, SCM_CREDENTIALS, and floods of 253-fd
 * messages. fdpass must close that connection with ERR_FDPASS_PROTOCOL, never
 * crash, never leak an fd, and keep its memory and fd table bounded.
 *
 * Every test audits this process's fds (serial) and every peer its own.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, connect, FdSocket, listen, sendFds, socketPair } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { codeOf, timeout } from './helpers/outcomes.js'
import { HOSTILE_PEER, runNode, runPython, within } from './peers/rel_spawn.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-hostile-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))
const MB = 1024 * 1024

/** Modes of hostile_peer.py that break the wire format, and what arrives intact first. */
const BAD: Array<[string, string[]]> = [
  ['garbage', []],
  ['garbage-fds', []],
  ['more-fds', []],
  ['unannounced', []],
  ['late-fds', []],
  ['split-fds', []],
  ['huge', []],
  ['good-then-bad', ['good']],
]

/** Receives what `sock` gets from a hostile peer: intact messages, then the error. */
async function drainHostile(
  sock: FdSocket,
): Promise<{ intact: string[]; code: string | undefined; message: string; after: string | undefined }> {
  const intact: string[] = []
  for (;;) {
    try {
      const m = await sock.receive(timeout())
      intact.push(m.data.toString())
      closeFds(m.fds)
    } catch (err) {
      const after = await codeOf(sock.receive(timeout()))
      return { intact, code: (err as NodeJS.ErrnoException).code, message: (err as Error).message, after }
    }
  }
}

for (const [mode, intactFirst] of BAD) {
  test.serial(`FdSocket vs a hostile peer (${mode}): ERR_FDPASS_PROTOCOL, connection closed, no leak`, async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair()
      const peer = runPython(HOSTILE_PEER, [mode], { socket: theirs, timeoutMs: 30_000 })
      closeFds([theirs])
      const sock = FdSocket.from(mine)
      const got = await drainHostile(sock)
      t.deepEqual(got.intact, intactFirst, 'the messages before the violation arrive intact')
      t.is(got.code, 'ERR_FDPASS_PROTOCOL', got.message)
      t.is(got.after, 'ERR_SOCKET_CLOSED', 'then the connection is closed')
      t.log(`${mode}: ${got.message}`)
      const report = await peer.report
      // It sees the end on its read, or on a write that was still going on.
      const ending = (report.end ?? report.error) as string
      t.true(
        ['eof', 'ConnectionResetError', 'BrokenPipeError'].includes(ending),
        `the peer saw its connection end: ${ending}`,
      )
      t.true(report.fd_audit_ok, JSON.stringify(report))
      sock.close()
    })
  })
}

test.serial(
  'FdServer with every hostile peer at once: each connection fails alone, the server keeps serving',
  async (t) => {
    await withFdAudit(t, async () => {
      const socketPath = path.join(tmp, 'server.sock')
      const server = await listen(socketPath)
      const peers = BAD.map(([mode]) => runPython(HOSTILE_PEER, [mode, socketPath], { timeoutMs: 30_000 }))
      const results = []
      for (let i = 0; i < BAD.length; i++) {
        const sock = await within(server.accept(), 10_000, 'accept')
        results.push(drainHostile(sock).finally(() => sock.close()))
      }
      for (const got of await Promise.all(results)) {
        t.is(got.code, 'ERR_FDPASS_PROTOCOL', got.message)
        t.is(got.after, 'ERR_SOCKET_CLOSED')
      }
      for (const peer of peers) {
        const report = await peer.report
        t.true(report.fd_audit_ok, JSON.stringify(report))
      }
      // A well-behaved client is still served.
      const client = await connect(socketPath)
      const served = await within(server.accept(), 10_000, 'accept')
      const f = fs.openSync(__filename, 'r')
      await client.send('fine', [f])
      const m = await served.receive(timeout())
      t.is(m.data.toString(), 'fine')
      t.is(m.fds.length, 1)
      closeFds([f, ...m.fds])
      client.close()
      served.close()
      await server.close()
    })
  },
)

test.serial(
  'SCM_CREDENTIALS from the peer, with and without fds: messages arrive intact, nothing extra leaks',
  async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair()
      const peer = runPython(HOSTILE_PEER, ['creds'], { socket: theirs, timeoutMs: 30_000 })
      closeFds([theirs])
      const sock = FdSocket.from(mine)
      const a = await sock.receive(timeout())
      t.is(a.data.toString(), 'with-creds')
      t.is(a.fds.length, 1)
      const buf = Buffer.alloc(64)
      t.is(buf.subarray(0, fs.readSync(a.fds[0]!, buf, 0, 64, 0)).toString(), 'hostile file')
      const b = await sock.receive(timeout())
      t.is(b.data.toString(), 'creds-only')
      t.deepEqual(b.fds, [])
      closeFds(a.fds)
      await sock.send('k')
      const report = await peer.report
      t.true((report.reply as number) > 0)
      t.true(report.fd_audit_ok, JSON.stringify(report))
      sock.close()
    })
  },
)

test.serial(
  'a flood of 253-fd messages to a socket with maxFds 4: closed with ERR_FDPASS_PROTOCOL, the flooder is cut off',
  async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair()
      const peer = runPython(HOSTILE_PEER, ['flood', 'fd3', '100000'], { socket: theirs, timeoutMs: 60_000 })
      closeFds([theirs])
      const sock = FdSocket.from(mine, { maxFds: 4 })
      const got = await drainHostile(sock)
      t.deepEqual(got.intact, [])
      t.is(got.code, 'ERR_FDPASS_PROTOCOL', got.message)
      t.is(got.after, 'ERR_SOCKET_CLOSED')
      const report = await peer.report
      t.true((report.sent as number) < 100_000, `the flooder was stopped after ${report.sent} messages`)
      t.true(
        ['BrokenPipeError', 'ConnectionResetError'].includes(report.send_error as string),
        String(report.send_error),
      )
      t.true(report.fd_audit_ok, JSON.stringify(report))
      sock.close()
    })
  },
)

interface FloodOptions {
  /** hostile_peer.py's mode (default 'flood'). */
  mode?: string
  type?: 'stream' | 'seqpacket' | 'dgram'
  framing?: boolean
  maxQueuedFds?: number
  /** The reader stops after this many messages (default: at the end of the stream). */
  count?: number
}

/** A Python flooder and a Node reader (slow, with `maxFds` and `readAhead`) on one pair. */
async function flood(messages: number, maxFds: number, readAhead: number, options: FloodOptions = {}) {
  const [x, y] = socketPair(options.type ?? 'stream')
  const flooder = runPython(HOSTILE_PEER, [options.mode ?? 'flood', 'fd3', String(messages)], {
    socket: x,
    timeoutMs: 90_000,
  })
  const extra =
    options.maxQueuedFds === undefined
      ? []
      : [options.framing === false ? 'unframed' : 'framed', String(options.maxQueuedFds), String(options.count ?? 1e9)]
  const reader = runNode(['flood-reader', String(maxFds), String(readAhead), ...extra], {
    socket: y,
    nodeArgs: ['--expose-gc'],
    timeoutMs: 90_000,
  })
  closeFds([x, y])
  // The reader samples its own fd table between event-loop turns; a read
  // loop that ran on inside one native call would hide from it. So this
  // process samples the reader's table from outside too, every millisecond.
  let outsidePeak = 0
  const pid = reader.child.pid
  const sampler = setInterval(() => {
    try {
      outsidePeak = Math.max(outsidePeak, fs.readdirSync(`/proc/${pid}/fd`).length)
    } catch {
      // exited
    }
  }, 1)
  try {
    const [f, r] = await Promise.all([flooder.report, reader.report])
    const got = r as Record<string, number | string | boolean>
    // Held at the peak, above the table's size before the socket was made.
    const peak = Math.max(got.maxOpen as number, outsidePeak) - (got.baseline as number)
    return { flooder: f, reader: got, peak }
  } finally {
    clearInterval(sampler)
  }
}

for (const readAhead of [2, 16]) {
  test.serial(
    `a flood of 400 messages of 253 fds to a slow reader (readAhead ${readAhead}): fd table and RSS stay bounded, none lost`,
    async (t) => {
      await withFdAudit(t, async () => {
        const { flooder, reader } = await flood(400, 253, readAhead)
        t.is(flooder.sent, 400)
        t.true(flooder.fd_audit_ok, JSON.stringify(flooder))
        t.is(reader.received, 400, JSON.stringify(reader))
        t.is(reader.fdsReceived, 400 * 253)
        t.is(reader.error, 'ERR_SOCKET_CLOSED', 'the flood ends with the end of the stream')
        // At most the message being taken plus the read-ahead ones are held.
        const bound = (reader.baseline as number) + 253 * (readAhead + 1) + 32
        t.true((reader.maxOpen as number) <= bound, `at most ${reader.maxOpen} fds open (bound ${bound})`)
        const growth = (reader.rssAfter as number) - (reader.rssBefore as number)
        t.true(growth < 20 * MB, `RSS grew by ${(growth / MB).toFixed(1)} MB`)
        t.true(reader.fdAuditOk, JSON.stringify(reader))
        t.log(
          `readAhead ${readAhead}: max ${reader.maxOpen} fds open (baseline ${reader.baseline}), RSS ${(growth / MB).toFixed(1)} MB`,
        )
      })
    },
  )
}

test.serial(
  'a flood of 253-fd messages to a slow reader with maxFds 4: it stops at the first one, nothing pulled in',
  async (t) => {
    await withFdAudit(t, async () => {
      const { flooder, reader } = await flood(5000, 4, 16)
      t.is(reader.received, 0)
      t.is(reader.error, 'ERR_FDPASS_PROTOCOL', String(reader.errorMessage))
      t.true((reader.maxOpen as number) <= (reader.baseline as number) + 8, `at most ${reader.maxOpen} fds open`)
      const growth = (reader.rssAfter as number) - (reader.rssBefore as number)
      t.true(growth < 20 * MB, `RSS grew by ${(growth / MB).toFixed(1)} MB`)
      t.true(reader.fdAuditOk, JSON.stringify(reader))
      t.true((flooder.sent as number) < 5000)
      t.true(flooder.fd_audit_ok, JSON.stringify(flooder))
    })
  },
)

test.serial(
  'a header announcing 65536 bytes and 0 fds, then 1-byte chunks each with 253 fds: ERR_FDPASS_PROTOCOL at the first chunk, the fd table never grows',
  async (t) => {
    await withFdAudit(t, async () => {
      const { flooder, reader, peak } = await flood(2000, 253, 16, { mode: 'midframe-flood', maxQueuedFds: 1024 })
      t.log(
        `mid-frame flood: peak ${peak} fds above the baseline of ${reader.baseline}; the flooder got ${flooder.sent} chunks in before ${flooder.send_error}`,
      )
      t.is(reader.received, 0)
      t.is(reader.error, 'ERR_FDPASS_PROTOCOL', String(reader.errorMessage))
      // The first chunk's fds come with the read of its byte, or of the
      // header too when the kernel glued them (the fds' read began there).
      t.regex(String(reader.errorMessage), /in the middle of a message|a frame announces 0 fds but 253 arrived/)
      // Sampled while the flood goes on (see flood()): at most one chunk's
      // fds are ever held, for the instant it is checked.
      t.true(peak <= 253 + 32, `peak ${reader.maxOpen} fds open (baseline ${reader.baseline})`)
      t.true(reader.fdAuditOk, JSON.stringify(reader))
      t.true((flooder.sent as number) < 2000, `the flooder was cut off after ${flooder.sent} chunks`)
      t.true(
        ['BrokenPipeError', 'ConnectionResetError'].includes(flooder.send_error as string),
        String(flooder.send_error),
      )
      t.true(flooder.fd_audit_ok, JSON.stringify(flooder))
    })
  },
)

/** Every kind of socket, with a read-ahead so large that only maxQueuedFds can bound it. */
const BOUNDED: Array<[string, FloodOptions]> = [
  ['framed stream', { mode: 'flood', type: 'stream' }],
  ['unframed stream', { mode: 'flood-raw', type: 'stream', framing: false }],
  ['seqpacket', { mode: 'flood-raw', type: 'seqpacket' }],
  ['dgram', { mode: 'flood-raw', type: 'dgram' }],
]
for (const [name, options] of BOUNDED) {
  test.serial(
    `a flood of 253-fd messages to a slow ${name} reader with readAhead 4096 and maxQueuedFds 506: at most maxQueuedFds plus one message held ahead`,
    async (t) => {
      await withFdAudit(t, async () => {
        const messages = 300
        const maxQueuedFds = 506
        const { flooder, reader, peak } = await flood(messages, 253, 4096, {
          ...options,
          maxQueuedFds,
          count: messages,
        })
        t.is(flooder.sent, messages)
        t.true(flooder.fd_audit_ok, JSON.stringify(flooder))
        t.is(reader.received, messages, JSON.stringify(reader))
        t.is(reader.fdsReceived, messages * 253)
        // Held ahead: at most maxQueuedFds and one message more; plus the
        // message the reader has in hand (its fds are closed after sampling).
        const bound = maxQueuedFds + 253 + 253 + 16
        t.true(peak <= bound, `peak ${peak} fds above the baseline (bound ${bound})`)
        t.true(reader.fdAuditOk, JSON.stringify(reader))
        t.log(`${name}: peak ${peak} fds above the baseline of ${reader.baseline} (bound ${bound})`)
      })
    },
  )
}

test.serial(
  'after a protocol error the socket reports itself closed: send() and peerCredentials() give ERR_SOCKET_CLOSED, not EBADF',
  async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair()
      const sock = FdSocket.from(mine)
      // A header with reserved bits set, as a hostile peer would send.
      sendFds(theirs, Buffer.from([1, 0, 0, 0, 0, 0, 1, 0, 120]))
      t.is(await codeOf(sock.receive(timeout())), 'ERR_FDPASS_PROTOCOL')
      const sendCode = await codeOf(sock.send('x'))
      t.true(
        sendCode === 'ERR_SOCKET_CLOSED' || sendCode === 'ERR_FDPASS_PROTOCOL',
        `send() after the error: ${sendCode}`,
      )
      let credsCode: string | undefined
      try {
        sock.peerCredentials()
      } catch (err) {
        credsCode = (err as NodeJS.ErrnoException).code
      }
      t.is(credsCode, 'ERR_SOCKET_CLOSED', `peerCredentials() after the error: ${credsCode}`)
      sock.close()
      closeFds([theirs])
    })
  },
)
