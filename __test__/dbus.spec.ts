/**
 * D-Bus end to end: a real dbus-daemon (Debian's, started here as a child),
 * dbus-next with `usocket` aliased to `fdpass/usocket` (see package.json's
 * devDependencies and overrides), UNIX_FD negotiated. A service receives an
 * fd (type h) in a method call, reads it, and returns a new fd (a memfd) in
 * its reply; a dbus-next client and a jeepney (Python) client read it. Fd
 * audits in this process and in the Python peer.
 */
import test from 'ava'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { createInterface } from 'node:readline'

import { closeFds, memfd } from 'fdpass'
import { USocket } from 'fdpass/usocket'

import { withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'

// dbus-next has no types of its own: the few calls made here.
interface Bus {
  requestName(name: string, flags: number): Promise<number>
  export(path: string, iface: object): void
  getProxyObject(
    name: string,
    path: string,
  ): Promise<{ getInterface(name: string): Record<string, (...args: unknown[]) => Promise<unknown>> }>
  disconnect(): void
  _connection: { stream: unknown }
}
interface DBusNext {
  sessionBus(options: { busAddress: string; negotiateUnixFd: boolean }): Bus
  interface: { Interface: new (name: string) => object }
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dbus = require('dbus-next') as DBusNext

const linux = process.platform === 'linux'
const haveDaemon = spawnSync('dbus-daemon', ['--version']).status === 0
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-dbus-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** Starts a session dbus-daemon listening on a path and (Linux) an abstract name; resolves with its addresses. */
async function startBus(): Promise<{ daemon: ChildProcess; pathAddress: string; abstractAddress: string | undefined }> {
  const socket = path.join(tmp, `bus-${process.pid}`)
  const abstract = `fdpass-test-bus-${process.pid}-${Date.now()}`
  const config = path.join(tmp, 'session.conf')
  fs.writeFileSync(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  ${linux ? `<listen>unix:abstract=${abstract}</listen>` : ''}
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
  )
  const daemon = spawn('dbus-daemon', [`--config-file=${config}`, '--nofork', '--print-address'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // Kept for the error below only (it warns, harmlessly, that it may not raise its fd limit).
  let stderr = ''
  daemon.stderr!.on('data', (chunk: Buffer) => (stderr += chunk))
  const lines = createInterface({ input: daemon.stdout! })
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(daemon, 'exit').then(([code]) => Promise.reject(new Error(`dbus-daemon exited with ${code}: ${stderr}`))),
  ])) as [string]
  lines.close()
  const addresses = line.trim().split(';')
  return {
    daemon,
    pathAddress: addresses.find((a) => a.startsWith('unix:path='))!,
    abstractAddress: addresses.find((a) => a.startsWith('unix:abstract=')),
  }
}

async function stopBus(daemon: ChildProcess): Promise<void> {
  if (daemon.exitCode === null && daemon.signalCode === null) {
    const exited = once(daemon, 'close')
    daemon.kill('SIGTERM')
    await exited
  }
}

/** The service: Swap(h) reads the fd it gets and returns a memfd holding that text, reversed. */
function makeService(): object {
  const { Interface } = dbus.interface
  class SwapInterface extends Interface {
    Swap(fd: number): number {
      // The received fd is the service's to close.
      const text = readText(fd)
      closeFds([fd])
      const reversed = Buffer.from([...text].reverse().join(''))
      const out = memfd('swap-reply', reversed.length)
      fs.writeSync(out, reversed, 0, reversed.length, 0)
      // dbus-next writes the reply once this returns; fdpass sends the fd
      // at once or holds a duplicate: closing it on the next turn is safe.
      setImmediate(() => closeFds([out]))
      return out
    }
  }
  ;(SwapInterface as unknown as { configureMembers(m: object): void }).configureMembers({
    methods: { Swap: { inSignature: 'h', outSignature: 'h' } },
  })
  return new SwapInterface('org.fdpass.Test')
}

// .ci/run installs dbus-daemon and jeepney and sets FDPASS_REQUIRE_DBUS: there the tests run or fail.
const required = process.env.FDPASS_REQUIRE_DBUS === '1'
const run = haveDaemon || required ? test.serial : test.serial.skip
if (!haveDaemon && !required)
  console.warn('dbus.spec.ts: dbus-daemon is not installed (.ci/run installs it): the D-Bus tests are skipped')

run(
  'dbus-next over fdpass/usocket: an fd goes to a service in a method call and a new fd comes back in its reply, through a real dbus-daemon',
  async (t) => {
    await withFdAudit(t, async () => {
      const { daemon, pathAddress, abstractAddress } = await startBus()
      const buses: Bus[] = []
      try {
        const service = dbus.sessionBus({ busAddress: pathAddress, negotiateUnixFd: true })
        buses.push(service)
        t.is(await service.requestName('org.fdpass.Test', 4), 1, 'the service owns its name')
        service.export('/org/fdpass/Test', makeService())
        // The client comes in through the abstract name where there is one.
        const client = dbus.sessionBus({ busAddress: abstractAddress ?? pathAddress, negotiateUnixFd: true })
        buses.push(client)
        const proxy = await client.getProxyObject('org.fdpass.Test', '/org/fdpass/Test')
        const iface = proxy.getInterface('org.fdpass.Test')
        for (const text of ['hello over D-Bus', 'and again']) {
          const file = openTempFile(tmp, text)
          const returned = (await iface.Swap!(file)) as number
          closeFds([file])
          t.is(typeof returned, 'number')
          t.is(readText(returned), [...text].reverse().join(''))
          closeFds([returned])
        }
        // UNIX_FD really negotiated, over fdpass's stream (no silent fallback to net).
        for (const bus of buses) {
          const stream = bus._connection.stream as USocket & { supportsUnixFd?: boolean }
          t.true(stream instanceof USocket, 'dbus-next uses fdpass/usocket')
          t.is(stream.supportsUnixFd, true, 'the daemon agreed to UNIX_FD')
          t.is(stream.queuedFds, 0, 'every fd that came was taken')
        }
      } finally {
        for (const bus of buses) bus.disconnect()
        await Promise.all(
          buses.map((bus) => {
            const stream = bus._connection.stream as USocket
            return stream.closed ? undefined : once(stream, 'close')
          }),
        )
        await stopBus(daemon)
      }
    })
  },
)

const havePythonJeepney = spawnSync('python3', ['-c', 'import jeepney']).status === 0
const runPy = (haveDaemon && havePythonJeepney) || required ? test.serial : test.serial.skip
if (!required && haveDaemon && !havePythonJeepney)
  console.warn('dbus.spec.ts: python3 has no jeepney (.ci/run installs it): the jeepney test is skipped')

runPy('a jeepney (Python) client calls the fdpass service with an fd and reads the fd of the reply', async (t) => {
  await withFdAudit(t, async () => {
    const { daemon, pathAddress } = await startBus()
    let service: Bus | undefined
    try {
      service = dbus.sessionBus({ busAddress: pathAddress, negotiateUnixFd: true })
      t.is(await service.requestName('org.fdpass.Test', 4), 1)
      service.export('/org/fdpass/Test', makeService())
      const peer = spawn('python3', [path.join(__dirname, 'peers', 'dbus_jeepney.py'), pathAddress, 'from jeepney'], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, PYTHONPATH: path.join(__dirname, 'peers') },
      })
      let out = ''
      peer.stdout!.on('data', (chunk: Buffer) => (out += chunk))
      const [code] = (await once(peer, 'close')) as [number]
      t.is(code, 0, out)
      const report = JSON.parse(out.trim().split('\n').pop()!) as { text: string; fd_audit_ok: boolean }
      t.is(report.text, 'yenpeej morf')
      t.true(report.fd_audit_ok, `python fds: ${out}`)
    } finally {
      if (service) {
        const stream = service._connection.stream as USocket
        service.disconnect()
        if (!stream.closed) await once(stream, 'close')
      }
      await stopBus(daemon)
    }
  })
})
