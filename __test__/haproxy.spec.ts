/**
 * HAProxy's `_getsocks` protocol both ways, against Debian's real haproxy run
 * in the foreground (`haproxy -db`) as a child of the test, killed and reaped
 * at the end: getHaproxySockets() takes a running HAProxy's listeners, and
 * `haproxy -x` starts on Node's listeners served by serveHaproxySockets().
 * Then hostile peers, with every fd received closed, and large transfers
 * (batches of 252 with acks) between the two halves.
 */
import test, { type ExecutionContext } from 'ava'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

import {
  closeFds,
  getHaproxySockets,
  HAPROXY_SOCKET_OPTIONS,
  listen,
  serveHaproxySockets,
  type FdpassError,
} from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'
import { codeOf } from './helpers/outcomes.js'
import { httpGet, readAll } from './helpers/loopback.js'

// .ci/run sets it: there a missing haproxy is a failure, not a skip.
const required = process.env.FDPASS_REQUIRE_HAPROXY === '1'
let haveHaproxy = false
try {
  execFileSync('haproxy', ['-v'], { stdio: 'ignore' })
  haveHaproxy = true
} catch {
  haveHaproxy = false
}
const linux = process.platform === 'linux'
const withHaproxy = linux && (haveHaproxy || required) ? test.serial : test.skip
const why = !linux
  ? ' (skipped: the test reads /proc and runs Debian’s haproxy, on Linux only)'
  : withHaproxy === test.skip
    ? ' (skipped: haproxy is not installed; .ci/run installs it)'
    : ''

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-haproxy-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))
let counter = 0
const fresh = (name: string) => path.join(tmp, `${name}${counter++}`)

const running = new Set<ChildProcess>()
test.afterEach.always(async () => {
  for (const child of running) await stop(child)
})

/** Kills and reaps a haproxy child. */
async function stop(child: ChildProcess): Promise<void> {
  running.delete(child)
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A port free right now (bound to port 0, then closed). */
async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address() as net.AddressInfo
  await new Promise((resolve) => s.close(resolve))
  return port
}

const frontend = (port: number) => `defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 5s
frontend web
  bind 127.0.0.1:${port}
  http-request return status 200 content-type text/plain string ok
`

/** Starts `haproxy -db` with `config` and extra arguments; resolves once `ready()` says so, with its output. */
async function startHaproxy(
  config: string,
  args: string[],
  ready: () => boolean,
): Promise<{ child: ChildProcess; output: () => string }> {
  const cfg = fresh('haproxy.cfg')
  fs.writeFileSync(cfg, config)
  const child = spawn('haproxy', ['-db', ...args, '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let output = ''
  child.stdout!.on('data', (c) => (output += c))
  child.stderr!.on('data', (c) => (output += c))
  for (let i = 0; i < 250 && !ready(); i++) {
    if (child.exitCode !== null) break
    await sleep(20)
  }
  if (!ready()) {
    await stop(child)
    throw new Error(`haproxy did not start: ${output}`)
  }
  return { child, output: () => output }
}

/** The socket inode an fd of process `pid` refers to ('socket:[N]'). */
const linkOf = (pid: number | 'self', fd: number) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`)
const fdLinks = (pid: number) =>
  fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return linkOf(pid, Number(fd))
    } catch {
      return ''
    }
  })

withHaproxy(`getHaproxySockets takes a running HAProxy's listeners; Node serves on the frontend's${why}`, async (t) => {
  await withFdAudit(t, async () => {
    let port = 0
    let haproxy: Awaited<ReturnType<typeof startHaproxy>> | undefined
    const stats = fresh('s.sock')
    const plain = fresh('plain.sock')
    // A port picked free may be taken again before haproxy binds it: retry.
    for (let attempt = 0; attempt < 5 && !haproxy; attempt++) {
      port = await freePort()
      const config = `global
  stats socket ${stats} mode 600 level admin expose-fd listeners
  stats socket ${plain} mode 600 level admin
${frontend(port)}`
      haproxy = await startHaproxy(config, [], () => fs.existsSync(stats) && fs.existsSync(plain)).catch(
        () => undefined,
      )
    }
    if (!haproxy) return t.fail('haproxy did not start on a free port in 5 attempts')
    t.is(await httpGet(port), 'ok', 'haproxy answers on its frontend')

    // A stats socket without expose-fd refuses, and says so.
    const refused = await getHaproxySockets(plain).catch((e: FdpassError) => e)
    t.is((refused as FdpassError).code, 'ERR_FDPASS_PROTOCOL', String(refused))
    t.regex((refused as Error).message, /expose-fd listeners/)

    const sockets = await getHaproxySockets(stats)
    // Its frontend, and its stats sockets: HAProxy hands every listener over.
    t.true(sockets.length >= 2, JSON.stringify(sockets))
    for (const s of sockets) {
      t.deepEqual([s.namespace, s.interface, s.options, s.dgram], ['', '', 0, false])
      // The same socket as haproxy's own.
      t.true(fdLinks(haproxy.child.pid!).includes(linkOf('self', s.fd)), `fd ${s.fd} is one of haproxy's sockets`)
    }
    // Node adopts each and finds the frontend by its address.
    const servers = await Promise.all(
      sockets.map(
        (s) =>
          new Promise<net.Server>((resolve, reject) => {
            const server = net.createServer((c) => c.end('node'))
            server.once('error', reject).listen({ fd: s.fd }, () => resolve(server))
          }),
      ),
    )
    const web = servers.filter((s) => (s.address() as net.AddressInfo | null)?.port === port)
    t.is(web.length, 1, 'one of the sockets is the frontend on 127.0.0.1:port')
    // socketInfo says the same, without adopting: the frontend, and the stats sockets.
    const frontendInfo = sockets.filter((s) => s.info.local.kind === 'inet' && s.info.local.port === port)
    t.is(frontendInfo.length, 1)
    t.like(frontendInfo[0]!.info, {
      family: 'inet',
      type: 'stream',
      listening: true,
      local: { address: '127.0.0.1', port },
    })
    t.true(
      sockets.some(
        (s) => s.info.family === 'unix' && s.info.local.kind === 'path' && s.info.local.path.startsWith(stats),
      ),
    )
    // With haproxy gone, only Node accepts on the socket it took.
    await stop(haproxy.child)
    t.is(await readAll(net.connect(port, '127.0.0.1')), 'node')
    for (const server of servers) await new Promise((resolve) => server.close(resolve))
  })
})

withHaproxy(`haproxy -x takes Node's listener from serveHaproxySockets and answers on it${why}`, async (t) => {
  await withFdAudit(t, async () => {
    const server = http.createServer((_req, res) => res.end('node'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    t.is(await httpGet(port), 'node')
    const failures: FdpassError[] = []
    const served = await serveHaproxySockets(fresh('x.sock'), [server], { onFailedAttempt: (e) => failures.push(e) })
    const stats = fresh('s.sock')
    // Node holds 127.0.0.1:port without SO_REUSEPORT: haproxy can only serve
    // there on the socket it was given.
    const haproxy = await startHaproxy(
      `global\n  stats socket ${stats} mode 600 level admin\n${frontend(port)}`,
      ['-x', served.path],
      () => fs.existsSync(stats),
    )
    const transfer = await served.taken()
    t.is(transfer.count, 1)
    t.is(transfer.peer.pid, haproxy.child.pid)
    const nodeSocket = linkOf('self', (server as unknown as { _handle: { fd: number } })._handle.fd)
    t.true(fdLinks(haproxy.child.pid!).includes(nodeSocket), "haproxy holds Node's listening socket")
    await served.close()
    await new Promise((resolve) => server.close(resolve))
    // Node stopped accepting: every answer is haproxy's.
    for (let i = 0; i < 5; i++) t.is(await httpGet(port), 'ok')
    t.deepEqual(failures, [])
    t.is(haproxy.child.exitCode, null, haproxy.output())
    await stop(haproxy.child)
  })
})

test.serial(
  'serveHaproxySockets to getHaproxySockets: 300 sockets in batches of 252 with acks, metadata intact',
  async (t) => {
    await withFdAudit(t, async () => {
      const server = net.createServer()
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
      const sockets = Array.from({ length: 300 }, (_, i) => ({
        socket: fd,
        namespace: i % 2 ? `ns${i}` : '',
        interface: i % 3 ? '' : 'lo',
        options: i === 7 ? HAPROXY_SOCKET_OPTIONS.V6ONLY | HAPROXY_SOCKET_OPTIONS.FOREIGN : 0,
      }))
      const served = await serveHaproxySockets(fresh('x.sock'), sockets)
      const got = await getHaproxySockets(served.path)
      t.is(got.length, 300)
      t.deepEqual(
        got.map((s) => [s.namespace, s.interface, s.options]),
        sockets.map((s) => [s.namespace, s.interface, s.options]),
      )
      t.true(got[7]!.v6only && got[7]!.foreign && !got[7]!.dgram)
      t.true(got.every((s) => linkOf('self', s.fd) === linkOf('self', fd)))
      t.is((await served.taken()).count, 300)
      closeFds(got.map((s) => s.fd))
      await served.close()
      await new Promise((resolve) => server.close(resolve))
    })
  },
)

test.serial('serveHaproxySockets answers anything but _getsocks with "Unknown command." and sends no fd', async (t) => {
  await withFdAudit(t, async () => {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const failures: FdpassError[] = []
    const served = await serveHaproxySockets(fresh('x.sock'), [server], { onFailedAttempt: (e) => failures.push(e) })
    const client = net.connect(served.path)
    client.write('show info\n')
    let answer = ''
    for await (const chunk of client) answer += chunk
    t.is(answer, 'Unknown command.\n')
    t.is(failures[0]?.code, 'ERR_FDPASS_PROTOCOL')
    await served.close()
    t.is(await codeOf(served.taken()), 'ERR_SOCKET_CLOSED')
    await new Promise((resolve) => server.close(resolve))
  })
})

/** A hand-made stats socket that answers _getsocks with `messages` ([bytes, fd count]); returns getHaproxySockets's error. */
async function hostile(
  messages: Array<[Buffer, number]>,
  options = {},
  donorFd?: number,
): Promise<FdpassError | unknown> {
  const p = fresh('h.sock')
  const server = await listen(p, { framing: false })
  const donor = net.createServer()
  await new Promise<void>((resolve) => donor.listen(0, '127.0.0.1', resolve))
  const serving = (async () => {
    const s = await server.accept()
    await s.receive()
    for (const [data, count] of messages) {
      await s.send(
        data,
        Array.from({ length: count }, () => donorFd ?? donor),
      )
      await sleep(10)
    }
    await sleep(50)
    s.close()
  })()
  const result = await getHaproxySockets(p, options).catch((e: unknown) => e)
  await serving
  await server.close()
  await new Promise((resolve) => donor.close(resolve))
  if (Array.isArray(result)) closeFds(result.map((s: { fd: number }) => s.fd))
  return result
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  if (os.endianness() === 'LE') b.writeUInt32LE(n)
  else b.writeUInt32BE(n)
  return b
}
const entry = (ns = '', iface = '', options = 0) =>
  Buffer.concat([
    Buffer.from([ns.length]),
    Buffer.from(ns),
    Buffer.from([iface.length]),
    Buffer.from(iface),
    u32(options),
  ])

async function expectProtocol(t: ExecutionContext, result: unknown, message: RegExp) {
  t.is((result as FdpassError).code, 'ERR_FDPASS_PROTOCOL', String(result))
  t.regex((result as Error).message, message)
}

test.serial('getHaproxySockets against hostile peers: each limit checked, every received fd closed', async (t) => {
  await withFdAudit(t, async () => {
    await expectProtocol(
      t,
      await hostile([[u32(100_000), 0]]),
      /announced 100000 sockets, more than maxSockets \(4096\)/,
    )
    await expectProtocol(t, await hostile([[u32(3), 0]], { maxSockets: 2 }), /more than maxSockets \(2\)/)
    await expectProtocol(
      t,
      await hostile([
        [u32(2), 0],
        [Buffer.concat([entry(), entry(), entry()]), 3],
      ]),
      /3 fds, more than the 2/,
    )
    await expectProtocol(
      t,
      await hostile([
        [u32(2), 0],
        [Buffer.concat([entry(), entry().subarray(0, 3)]), 2],
      ]),
      /closed the connection after 2 of 2 fds and 1/,
    )
    await expectProtocol(
      t,
      await hostile([
        [u32(2), 0],
        [Buffer.concat([entry(), entry()]), 1],
      ]),
      /metadata for a socket whose fd did not come/,
    )
    await expectProtocol(
      t,
      await hostile([
        [u32(1), 0],
        [Buffer.concat([entry(), Buffer.from('x')]), 1],
      ]),
      /more than the 1 sockets/,
    )
    await expectProtocol(
      t,
      await hostile([
        [u32(1), 0],
        [Buffer.alloc(600, 1), 1],
      ]),
      /more metadata than/,
    )
    await expectProtocol(
      t,
      await hostile([[Buffer.from('Permission denied\n'), 0]]),
      /refused _getsocks: "Permission denied"/,
    )
    await expectProtocol(t, await hostile([[Buffer.from([1, 2]), 0]]), /in the middle of the fd count/)
    // Closing at once is how HAProxy refuses a stats socket without expose-fd.
    await expectProtocol(
      t,
      await hostile([]),
      /without sending a socket: is the stats socket declared with "expose-fd listeners"/,
    )
    t.deepEqual(await hostile([[u32(0), 0]]), [])
    // Batches of 253, as HAProxy sent before 2022, are taken too.
    const old = await hostile([
      [u32(260), 0],
      [Buffer.concat(Array.from({ length: 253 }, () => entry())), 253],
      [Buffer.concat(Array.from({ length: 7 }, () => entry())), 7],
    ])
    t.true(Array.isArray(old) && old.length === 260, String(old))
    // An fd that is not a socket.
    const file = fs.openSync(__filename, 'r')
    await expectProtocol(
      t,
      await hostile(
        [
          [u32(1), 0],
          [entry(), 1],
        ],
        {},
        file,
      ),
      /an fd that is not a socket \(ENOTSOCK\)/,
    )
    fs.closeSync(file)
  })
})

test.serial('getHaproxySockets: ETIMEDOUT, AbortSignal, ENOENT, bad arguments', async (t) => {
  await withFdAudit(t, async () => {
    t.is(await codeOf(getHaproxySockets(fresh('none.sock'))), 'ENOENT')
    const p = fresh('silent.sock')
    const server = await listen(p, { framing: false })
    const held: Array<{ close(): void }> = []
    const keep = (async () => {
      for await (const s of server) held.push(s)
    })()
    t.is(await codeOf(getHaproxySockets(p, { timeout: 100 })), 'ETIMEDOUT')
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 50)
    t.is(await codeOf(getHaproxySockets(p, { signal: controller.signal })), 'ABORT_ERR')
    for (const s of held) s.close()
    await server.close()
    await keep
    await t.throwsAsync(getHaproxySockets(p, { maxSockets: 0 }), { code: 'ERR_OUT_OF_RANGE' })
    await t.throwsAsync(serveHaproxySockets(p, []), { code: 'ERR_INVALID_ARG_TYPE' })
    await t.throwsAsync(serveHaproxySockets(p, [{ socket: 0, namespace: 'n'.repeat(256) }]), {
      code: 'ERR_INVALID_ARG_VALUE',
    })
    await t.throwsAsync(serveHaproxySockets(p, ['x' as unknown as number]), { code: 'ERR_INVALID_ARG_TYPE' })
  })
})
