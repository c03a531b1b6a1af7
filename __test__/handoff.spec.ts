/**
 * Listener handoff: serveListeners() in an old process, takeListeners() in a
 * new one (a child process), for every kind of listener (TCP http.Server,
 * Unix net.Server, UDP dgram.Socket, fdpass FdServer, a bare fd), with fd
 * audits on both sides; and each failure mode: the peer gone mid-transfer,
 * a socket that is not a handoff socket, a hostile old process, the fd
 * limit (EMFILE), time limits and AbortSignal.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import * as dgram from 'node:dgram'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import * as readline from 'node:readline'

import { connect, listen, serveListeners, takeListeners, type FdpassError, type FdServer } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { codeOf } from './helpers/outcomes.js'
import { httpGet, readAll } from './helpers/loopback.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-handoff-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))
let counter = 0
const sockPath = () => path.join(tmp, `h${counter++}.sock`)
const taker = path.join(__dirname, 'peers', 'handoff_taker.js')

interface Event {
  event: string
  [key: string]: unknown
}

/** A taker child and its JSON events. */
function startTaker(
  socketPath: string,
  mode = 'serve',
  prefix: string[] = [],
): { child: ChildProcess; next(): Promise<Event>; exited: Promise<number | null> } {
  const argv = [process.execPath, taker, socketPath, mode]
  const [cmd, ...args] = [...prefix, ...argv] as [string, ...string[]]
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  return {
    child,
    exited,
    async next() {
      const { value, done } = await lines.next()
      if (done) throw new Error('the taker ended without another event')
      return JSON.parse(value as string) as Event
    },
  }
}

const listening = (server: net.Server, ...args: unknown[]) =>
  new Promise<void>((resolve, reject) => server.once('error', reject).listen(...(args as []), () => resolve()))
const closeServer = (server: net.Server) => new Promise<void>((resolve) => server.close(() => resolve()))

async function udpAsk(port: number): Promise<string> {
  const s = dgram.createSocket('udp4')
  s.send('hi', port, '127.0.0.1')
  const [msg] = (await once(s, 'message')) as [Buffer]
  s.close()
  return msg.toString()
}

function expectAuditOk(t: ExecutionContext, event: Event): void {
  t.is(event.event, 'audit')
  t.true(event.ok, `the taker's fds changed: ${JSON.stringify(event)}`)
}

test.serial('every kind of listener moves to a new process by name, which serves on it after ready()', async (t) => {
  await withFdAudit(t, async () => {
    const web = http.createServer((_req, res) => res.end('old'))
    await listening(web, 0, '127.0.0.1')
    const unixPath = path.join(tmp, `u${counter++}.sock`)
    const local = net.createServer((s) => s.end('old'))
    await listening(local, unixPath)
    const udp = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve))
    udp.on('message', (_m, r) => udp.send('old', r.port, r.address))
    const fdpassPath = path.join(tmp, `f${counter++}.sock`)
    const ipc: FdServer = await listen(fdpassPath)
    const raw = net.createServer()
    await listening(raw, 0, '127.0.0.1')
    const rawFd = (raw as unknown as { _handle: { fd: number } })._handle.fd

    const failures: FdpassError[] = []
    const handoffPath = sockPath()
    const handoff = await serveListeners(
      handoffPath,
      { web, local, udp, ipc, raw: rawFd },
      { onFailedAttempt: (e) => failures.push(e) },
    )
    t.is(fs.statSync(handoffPath).mode & 0o777, 0o600, 'only this user may connect by default')
    const port = (web.address() as net.AddressInfo).port
    const udpPort = udp.address().port
    const newer = startTaker(handoffPath)
    const taken = await newer.next()
    t.is(taken.event, 'taken', JSON.stringify(taken))
    t.deepEqual(taken.listeners, [
      { name: 'web', kind: 'tcp', address: '127.0.0.1', family: 'IPv4', port },
      { name: 'local', kind: 'unix', path: unixPath },
      { name: 'udp', kind: 'udp', address: '127.0.0.1', family: 'IPv4', port: udpPort },
      { name: 'ipc', kind: 'fdpass', path: fdpassPath },
      { name: 'raw', kind: 'fd' },
    ])
    // What each fd is, as the new process asked it (socketInfo).
    t.deepEqual(taken.infos, [
      ['inet', 'stream', true],
      ['unix', 'stream', true],
      ['inet', 'dgram', false],
      ['unix', 'stream', true],
      ['inet', 'stream', true],
    ])
    const result = await handoff.taken()
    t.deepEqual(result.names, ['web', 'local', 'udp', 'ipc', 'raw'])
    t.is(result.peer.pid, newer.child.pid)
    t.deepEqual((await newer.next()).event, 'ready')
    t.false(fs.existsSync(handoffPath), 'the handoff socket is gone once done')

    // Drain then close: the old process stops accepting; the sockets live on in the new one.
    // A net.Server that bound a Unix path removes the file when it closes
    // (libuv does): a second name for it keeps the socket reachable here.
    const alias = `${unixPath}.alias`
    fs.linkSync(unixPath, alias)
    await closeServer(web)
    await closeServer(local)
    t.false(fs.existsSync(unixPath), "Node's close() removed the Unix socket file it bound")
    await new Promise<void>((resolve) => udp.close(resolve))
    await ipc.close()
    await closeServer(raw)
    t.true(fs.existsSync(fdpassPath), "the old FdServer's close() left the socket file to the new process")

    const pid = newer.child.pid
    t.is(await httpGet(port), `new ${pid} web`)
    t.is(await readAll(net.connect(alias)), `new ${pid} local`)
    t.is(await udpAsk(udpPort), `new ${pid} udp`)
    const client = await connect(fdpassPath)
    t.is((await client.receive()).data.toString(), `new ${pid} ipc`)
    client.close()
    t.deepEqual(failures, [])

    newer.child.stdin!.end('stop\n')
    expectAuditOk(t, await newer.next())
    t.is(await newer.exited, 0)
    fs.rmSync(alias, { force: true })
    fs.rmSync(fdpassPath, { force: true })
  })
})

test.serial(
  'a successor that dies before ready() fails its attempt; the listeners stay, and the next successor takes them',
  async (t) => {
    await withFdAudit(t, async () => {
      const web = http.createServer((_req, res) => res.end('old'))
      await listening(web, 0, '127.0.0.1')
      const failures: FdpassError[] = []
      const handoffPath = sockPath()
      const handoff = await serveListeners(handoffPath, { web }, { onFailedAttempt: (e) => failures.push(e) })
      const dying = startTaker(handoffPath, 'exit-before-ready')
      t.is((await dying.next()).event, 'taken')
      t.is(await dying.exited, 3)
      const port = (web.address() as net.AddressInfo).port
      t.is(await httpGet(port), 'old', 'the old process still serves')
      await new Promise((resolve) => setTimeout(resolve, 50))
      t.is(failures.length, 1)
      t.is(failures[0]?.code, 'ECONNRESET')
      t.regex(failures[0]!.message, /went away before sending 'ready'/)

      const next = startTaker(handoffPath)
      t.is((await next.next()).event, 'taken')
      await handoff.taken()
      t.is((await next.next()).event, 'ready')
      await closeServer(web)
      t.is(await httpGet(port), `new ${next.child.pid} web`)
      next.child.stdin!.end('stop\n')
      expectAuditOk(t, await next.next())
      t.is(await next.exited, 0)
    })
  },
)

test.serial(
  'EMFILE: a successor at its fd limit gets ERR_FDS_TRUNCATED, leaks nothing, and the old process keeps its listeners',
  async (t) => {
    await withFdAudit(t, async () => {
      const web = net.createServer()
      await listening(web, 0, '127.0.0.1')
      const fd = (web as unknown as { _handle: { fd: number } })._handle.fd
      // 200 names for one socket: 200 fds to receive in one message.
      const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`l${i}`, fd]))
      const failures: FdpassError[] = []
      const handoffPath = sockPath()
      const handoff = await serveListeners(handoffPath, many, { onFailedAttempt: (e) => failures.push(e) })
      const limited = startTaker(handoffPath, 'take-only', ['sh', '-c', 'ulimit -n 100 && exec "$@"', 'sh'])
      const error = await limited.next()
      t.is(error.event, 'error', JSON.stringify(error))
      t.is(error.code, 'ERR_FDS_TRUNCATED')
      t.regex(error.message as string, /fd limit \(EMFILE/)
      expectAuditOk(t, await limited.next())
      t.is(await limited.exited, 0)
      await new Promise((resolve) => setTimeout(resolve, 50))
      t.is(failures.length, 1, 'the old process saw the attempt fail')

      const full = startTaker(handoffPath, 'take-only')
      const taken = await full.next()
      t.is((taken.listeners as unknown[]).length, 200)
      expectAuditOk(t, await full.next())
      t.is(await full.exited, 0)
      await handoff.close()
      t.is(await codeOf(handoff.taken()), 'ERR_SOCKET_CLOSED')
      await closeServer(web)
    })
  },
)

test.serial(
  'not a handoff socket: no socket, a server that answers otherwise, one that never answers (ETIMEDOUT, AbortSignal)',
  async (t) => {
    await withFdAudit(t, async () => {
      t.is(await codeOf(takeListeners(path.join(tmp, 'nothing-here.sock'))), 'ENOENT')

      const otherPath = sockPath()
      const other = await listen(otherPath)
      const answering = (async () => {
        const s = await other.accept()
        await s.receive()
        await s.send(JSON.stringify({ hello: 'world' }))
        await s.receive().catch(() => undefined)
        s.close()
      })()
      const err = await takeListeners(otherPath).catch((e: FdpassError) => e)
      t.is((err as FdpassError).code, 'ERR_FDPASS_PROTOCOL')
      t.regex((err as FdpassError).message, /not a listener handoff peer/)
      await answering

      const silent: Array<{ close(): void }> = []
      const keep = (async () => {
        for await (const s of other) silent.push(s)
      })()
      const started = Date.now()
      const timedOut = await takeListeners(otherPath, { timeout: 200 }).catch((e: FdpassError) => e)
      t.is((timedOut as FdpassError).code, 'ETIMEDOUT')
      t.true(Date.now() - started < 5000)
      const controller = new AbortController()
      setTimeout(() => controller.abort(), 100)
      const aborted = await takeListeners(otherPath, { signal: controller.signal }).catch((e: FdpassError) => e)
      t.is((aborted as FdpassError).code, 'ABORT_ERR')
      t.is((aborted as Error).name, 'AbortError')
      for (const s of silent) s.close()
      await other.close()
      await keep

      // A plain Unix stream server that speaks another protocol (text, no framing).
      const textPath = sockPath()
      const conns: net.Socket[] = []
      const text = net.createServer((s) => {
        conns.push(s)
        s.on('error', () => undefined).end('Unknown command. Please enter one of the following commands only :\n')
      })
      await listening(text, textPath)
      const wrong = await takeListeners(textPath, { timeout: 2000 }).catch((e: FdpassError) => e)
      t.true(['ERR_FDPASS_PROTOCOL', 'ETIMEDOUT', 'ECONNRESET'].includes((wrong as FdpassError).code), String(wrong))
      for (const c of conns) c.destroy()
      await closeServer(text)
    })
  },
)

/** A hand-made old process that sends `messages` (data and fd counts) after the take request. */
async function hostileOld(
  t: ExecutionContext,
  messages: Array<[string, number]>,
  expect: RegExp,
  code = 'ERR_FDPASS_PROTOCOL',
) {
  const p = sockPath()
  const server = await listen(p)
  const donor = net.createServer()
  await listening(donor, 0, '127.0.0.1')
  const serving = (async () => {
    const s = await server.accept()
    await s.receive()
    for (const [data, count] of messages)
      await s.send(
        data,
        Array.from({ length: count }, () => donor),
      )
    await new Promise((resolve) => setTimeout(resolve, 100))
    s.close()
  })()
  const err = await takeListeners(p, { maxListeners: 4 }).catch((e: FdpassError) => e)
  t.is((err as FdpassError).code, code, String(err))
  t.regex((err as Error).message, expect)
  await serving
  await server.close()
  await closeServer(donor)
}

const header = (listeners: unknown[]) =>
  JSON.stringify({ protocol: 'fdpass-listeners', version: 1, type: 'listeners', listeners })
const l = (name: string) => ({ name, kind: 'fd' })

test.serial('a hostile old process: every received fd is closed and the error says what broke', async (t) => {
  await withFdAudit(t, async () => {
    await hostileOld(
      t,
      [
        [header([l('a'), l('b')]), 0],
        ['fds', 3],
      ],
      /3 fds where 2 were expected/,
    )
    await hostileOld(t, [[header([l('a'), l('b')]), 2]], /sent 2 fds with its 'listeners' message/)
    await hostileOld(t, [[header([l('a'), l('b'), l('c'), l('d'), l('e')]), 0]], /more than maxListeners \(4\)/)
    await hostileOld(t, [[header([l('a'), l('a')]), 0]], /appears twice/)
    await hostileOld(
      t,
      [[header([{ name: 'a', kind: 'tcp', address: '1.2.3.4', family: 'IPv4', port: 70000 }]), 0]],
      /no valid port/,
    )
    await hostileOld(
      t,
      [[JSON.stringify({ protocol: 'fdpass-listeners', version: 2, type: 'listeners' }), 0]],
      /version 2/,
    )
    await hostileOld(
      t,
      [
        [header([l('a'), l('b'), l('c')]), 0],
        ['fds', 2],
      ],
      /2 fds where 3 were expected/,
    )
    await hostileOld(t, [[header([l('a'), l('b'), l('c')]), 0]], /went away after sending 0 of 3/, 'ECONNRESET')
    // The fds are asked what they are: a TCP listener said to be UDP is refused.
    const udp = { name: 'u', kind: 'udp', address: '127.0.0.1', family: 'IPv4', port: 1 }
    await hostileOld(
      t,
      [
        [header([udp]), 0],
        ['fds', 1],
      ],
      /'u' is said to be udp but is a listening inet stream socket/,
    )
  })
})

test.serial('arguments are checked before anything happens', async (t) => {
  await withFdAudit(t, async () => {
    const p = sockPath()
    await t.throwsAsync(serveListeners(p, {}), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(serveListeners(p, { a: 'x' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
    await t.throwsAsync(serveListeners(p, { a: -1 }), { code: 'ERR_OUT_OF_RANGE' })
    await t.throwsAsync(serveListeners(p, null as unknown as Record<string, number>), { code: 'ERR_INVALID_ARG_TYPE' })
    await t.throwsAsync(serveListeners(p, { a: 0 }, { timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' })
    await t.throwsAsync(serveListeners(p, { ['x'.repeat(256)]: 0 }), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(takeListeners(p, { maxListeners: 0 }), { code: 'ERR_OUT_OF_RANGE' })
    await t.throwsAsync(takeListeners(p, { signal: 'no' as unknown as AbortSignal }), { code: 'ERR_INVALID_ARG_TYPE' })
    t.false(fs.existsSync(p))
    // A listener closed before the successor comes fails that attempt, clearly.
    const web = net.createServer()
    await listening(web, 0, '127.0.0.1')
    const failures: FdpassError[] = []
    const handoff = await serveListeners(p, { web }, { onFailedAttempt: (e) => failures.push(e) })
    await closeServer(web)
    const err = await takeListeners(p).catch((e: FdpassError) => e)
    t.is((err as FdpassError).code, 'ECONNRESET')
    t.is(failures[0]?.code, 'ERR_SERVER_NOT_RUNNING')
    await handoff.close()
  })
})

test.serial('allowPeer refuses a successor before anything is sent: ECONNRESET saying why it may be', async (t) => {
  await withFdAudit(t, async () => {
    const web = net.createServer()
    await listening(web, 0, '127.0.0.1')
    const seen: number[] = []
    const handoff = await serveListeners(
      sockPath(),
      { web },
      {
        allowPeer: (peer) => {
          seen.push(peer.uid)
          return false
        },
      },
    )
    const err = await takeListeners(handoff.path).catch((e: FdpassError) => e)
    t.is((err as FdpassError).code, 'ECONNRESET', String(err))
    t.regex((err as Error).message, /allowPeer/)
    t.deepEqual(seen, [process.getuid!()])
    await handoff.close()
    await closeServer(web)
  })
})
