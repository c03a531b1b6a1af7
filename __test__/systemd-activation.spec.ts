import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { connect } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

const CHILD = join(__dirname, 'peers', 'activated_child.js')
const haveActivate = process.platform === 'linux' && fs.existsSync('/usr/bin/systemd-socket-activate')

test.serial(
  'socket activation by the real systemd-socket-activate: listenFdsByName, adopt with net and FdServer.from, serve',
  async (t) => {
    if (!haveActivate) {
      // macOS has no systemd; on Linux .ci/run installs it (and requires it).
      if (process.platform === 'linux' && process.env.FDPASS_REQUIRE_SYSTEMD === '1')
        t.fail('systemd-socket-activate is missing')
      else t.pass(`not run: systemd-socket-activate is not installed (${process.platform})`)
      return
    }
    const dir = fs.mkdtempSync(join(tmpdir(), 'fdpass-activate-'))
    const httpPath = join(dir, 'http.sock')
    const adminPath = join(dir, 'admin.sock')
    await withFdAudit(t, async () => {
      const activator = spawn(
        'systemd-socket-activate',
        ['-l', httpPath, '-l', adminPath, '--fdname=http:admin', process.execPath, CHILD],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let stdout = ''
      let stderr = ''
      activator.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
      activator.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      const exited = once(activator, 'exit') as Promise<[number | null, string | null]>
      try {
        // It listens on both paths, then waits for the first connection.
        for (let i = 0; !(fs.existsSync(httpPath) && fs.existsSync(adminPath)); i++) {
          if (i > 500 || activator.exitCode !== null)
            throw new Error(`systemd-socket-activate did not listen: ${stderr}`)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        const client = net.connect(httpPath)
        let reply = ''
        client.on('data', (chunk: Buffer) => (reply += chunk.toString()))
        await once(client, 'end')
        client.destroy()
        // The other named socket, served by FdServer.from in the child.
        const admin = await connect(adminPath)
        const { data } = await admin.receive()
        admin.close()
        t.is(data.toString(), `admin of ${activator.pid}`)
        const [code] = await exited
        t.is(code, 0, stderr)
        t.is(reply, `hello from ${activator.pid}`, 'the command runs in the same process (exec)')
        const report = JSON.parse(stdout)
        t.is(report.pid, activator.pid)
        t.deepEqual(report.names, { http: [3], admin: [4] })
        t.deepEqual(report.envLeft, [], 'unsetEnvironment removed LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES')
        t.deepEqual(report.again, [], 'a second call finds nothing once the variables are gone')
        t.deepEqual(report.cloexec, [true, true])
        t.like(report.http, {
          family: 'unix',
          type: 'stream',
          listening: true,
          local: { kind: 'path', path: httpPath },
        })
        t.like(report.admin, {
          family: 'unix',
          type: 'stream',
          listening: true,
          local: { kind: 'path', path: adminPath },
        })
        t.deepEqual(
          report.after,
          report.before.filter((fd: number) => fd !== 3 && fd !== 4),
          "the child's fd audit: only the two sockets it was given are gone",
        )
      } finally {
        if (activator.exitCode === null && activator.signalCode === null) {
          activator.kill('SIGKILL')
          await exited
        }
      }
    })
    fs.rmSync(dir, { recursive: true, force: true })
  },
)
