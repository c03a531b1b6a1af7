/**
 * The fd store of a real service manager: a foreground `systemd --user`, a
 * child of this test, runs examples/systemd-fdstore.js as a Type=notify unit
 * with FileDescriptorStoreMax=. The service stores its listening socket and
 * a memfd holding its hit count by name; after `systemctl --user restart`
 * the new process gets both back, the count goes on from the memfd, and the
 * same listener still accepts.
 *
 * The manager needs, without being PID 1: root, `/run/systemd/system` (its
 * "booted with systemd" mark, created here and removed afterwards), its own
 * XDG_RUNTIME_DIR, and a cgroup of its own (a starting manager moves every
 * process of its cgroup into init.scope: without one it would take this
 * test's processes). Everything is killed, reaped and removed at the end.
 */
import test from 'ava'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { withFdAudit } from './helpers/fd-audit.js'

const run = promisify(execFile)
const SERVICE = join(__dirname, '..', 'examples', 'systemd-fdstore.js')
const MARK = '/run/systemd/system'

/** Why this machine cannot run the manager, or undefined when it can. */
function cannotRun(): string | undefined {
  if (process.platform !== 'linux') return 'systemd exists on Linux only'
  if (process.getuid?.() !== 0)
    return 'a foreground systemd --user here needs root (to create /run/systemd/system and a cgroup)'
  if (!fs.existsSync('/usr/bin/systemd') && !fs.existsSync('/lib/systemd/systemd')) {
    return 'systemd is not installed (.ci/run installs the systemd package)'
  }
  if (fs.existsSync(MARK)) {
    return 'systemd already runs this machine (/run/systemd/system exists): the test will not start a second manager beside it'
  }
  if (cgroupRoots().length === 0) return 'no writable cgroup hierarchy to give the manager a cgroup of its own'
  if (!fs.existsSync('/usr/bin/setpriv')) return 'setpriv (util-linux) is missing: it ties the manager to this test'
  return undefined
}

/** The cgroup hierarchies a manager tracks processes in: v2 alone, or v1's name=systemd and the hybrid unified one. */
function cgroupRoots(): string[] {
  if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup']
  return ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'].filter((d) => fs.existsSync(join(d, 'cgroup.procs')))
}

function systemdBinary(): string {
  return fs.existsSync('/usr/bin/systemd') ? '/usr/bin/systemd' : '/lib/systemd/systemd'
}

async function waitFor(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** One GET to the service over its Unix socket (no keep-alive): the body. */
async function ask(socketPath: string): Promise<string> {
  const agent = new http.Agent({ keepAlive: false })
  const [res] = (await once(http.get({ socketPath, path: '/', agent }), 'response')) as [http.IncomingMessage]
  let body = ''
  for await (const chunk of res) body += String(chunk)
  agent.destroy()
  return body.trim()
}

/** Every process left in `dir` and its sub-cgroups, killed; then the directories removed, deepest first. */
async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 100 && fs.existsSync(dir); attempt++) {
    const dirs: string[] = []
    const walk = (d: string) => {
      for (const entry of fs.readdirSync(d, { withFileTypes: true })) if (entry.isDirectory()) walk(join(d, entry.name))
      dirs.push(d)
    }
    walk(dir)
    for (const d of dirs) {
      for (const pid of fs.readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL')
        } catch {
          // already gone
        }
      }
      try {
        fs.rmdirSync(d)
      } catch {
        // still has processes (dying) or children: next attempt
      }
    }
    if (fs.existsSync(dir)) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  if (fs.existsSync(dir)) throw new Error(`could not remove the cgroup ${dir}`)
}

const reason = cannotRun()
// .ci/run installs systemd and sets this: there the test must run, not skip.
if (reason !== undefined && process.env.FDPASS_REQUIRE_SYSTEMD === '1') {
  test('fd store of a real systemd --user (required by FDPASS_REQUIRE_SYSTEMD=1)', (t) => {
    t.fail(`it cannot run here: ${reason}`)
  })
}

;(reason === undefined ? test.serial : test.serial.skip)(
  `fd store of a real systemd --user: a listener and a memfd survive systemctl restart${reason === undefined ? '' : ` (skipped: ${reason})`}`,
  async (t) => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'fdpass-fdstore-'))
    const runtime = join(dir, 'runtime')
    const serviceLog = join(dir, 'service.log')
    const listenPath = join(dir, 'http.sock')
    fs.mkdirSync(runtime, { mode: 0o700 })
    fs.mkdirSync(join(dir, 'config', 'systemd', 'user'), { recursive: true })
    fs.writeFileSync(
      join(dir, 'config', 'systemd', 'user', 'fdpass-fdstore.service'),
      [
        '[Service]',
        'Type=notify',
        `ExecStart=${process.execPath} ${SERVICE} ${listenPath}`,
        'FileDescriptorStoreMax=4',
        `StandardOutput=append:${serviceLog}`,
        `StandardError=append:${serviceLog}`,
        '',
      ].join('\n'),
    )
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      XDG_RUNTIME_DIR: runtime,
      XDG_CONFIG_HOME: join(dir, 'config'),
    }
    const systemctl = async (...args: string[]) =>
      (await run('systemctl', ['--user', ...args], { env, timeout: 30_000 })).stdout
    const cgroups = cgroupRoots().map((root) => join(root, `fdpass-test-${process.pid}`))
    const made: string[] = []
    let manager: ReturnType<typeof spawn> | undefined
    let managerLog = ''
    let managerExit: Promise<unknown> = Promise.resolve()
    try {
      fs.mkdirSync(MARK, { recursive: true })
      made.push(MARK)
      for (const cg of cgroups) {
        fs.mkdirSync(cg)
        made.push(cg)
      }
      // The shell moves itself into the new cgroups, then becomes the manager
      // (same pid). Should this test's process die without its cleanup (a
      // timeout), the manager gets SIGTERM (setpriv --pdeathsig, util-linux)
      // and stops its units rather than outliving it.
      const script = 'for d; do echo $$ > "$d/cgroup.procs" || exit 97; done; exec setpriv --pdeathsig TERM "$0" --user'
      const child = spawn('sh', ['-c', script, systemdBinary(), ...cgroups], {
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      manager = child
      managerExit = once(child, 'exit')
      child.stderr?.on('data', (chunk: Buffer) => (managerLog += chunk.toString()))
      await withFdAudit(t, async () => {
        await waitFor(
          'the manager to listen',
          () => fs.existsSync(join(runtime, 'systemd', 'private')) || child.exitCode !== null,
        )
        t.is(child.exitCode, null, managerLog)

        // Type=notify: start returns once the service said READY=1.
        await systemctl('start', 'fdpass-fdstore.service')
        const pid1 = (await systemctl('show', '-p', 'MainPID', '--value', 'fdpass-fdstore.service')).trim()
        t.is(await ask(listenPath), `hits=1 pid=${pid1}`)
        t.is(await ask(listenPath), `hits=2 pid=${pid1}`)
        t.regex(
          await systemctl('show', '-p', 'NFileDescriptorStore', 'fdpass-fdstore.service'),
          /^NFileDescriptorStore=2$/m,
        )

        await systemctl('restart', 'fdpass-fdstore.service')
        const pid2 = (await systemctl('show', '-p', 'MainPID', '--value', 'fdpass-fdstore.service')).trim()
        t.not(pid2, pid1)
        // The same listener accepts, and the count goes on from the memfd.
        t.is(await ask(listenPath), `hits=3 pid=${pid2}`)

        const lines = fs.readFileSync(serviceLog, 'utf8')
        t.regex(
          lines,
          new RegExp(`^\\[fdstore\\] pid ${pid1}: stored the listener and the state in the fd store$`, 'm'),
        )
        t.regex(
          lines,
          new RegExp(
            `^\\[fdstore\\] pid ${pid2}: listener from the fd store \\(fd [34], unix stream on ${listenPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`,
            'm',
          ),
        )
        t.regex(lines, new RegExp(`^\\[fdstore\\] pid ${pid2}: state from the fd store: 2 hits so far$`, 'm'))

        await systemctl('stop', 'fdpass-fdstore.service')
      })
    } finally {
      if (manager !== undefined && manager.exitCode === null && manager.signalCode === null) {
        const m = manager
        m.kill('SIGTERM')
        const timer = setTimeout(() => m.kill('SIGKILL'), 5000)
        await managerExit
        clearTimeout(timer)
      }
      for (const cg of made.filter((d) => d !== MARK)) await removeCgroup(cg)
      if (made.includes(MARK)) fs.rmdirSync(MARK)
      fs.rmSync(dir, { recursive: true, force: true })
    }
  },
)

test.serial(
  'the fd-store example outside systemd: serves one request, says there is no fd store, exits cleanly',
  async (t) => {
    await withFdAudit(t, async () => {
      const env = { ...process.env }
      for (const name of ['NOTIFY_SOCKET', 'LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete env[name]
      const { stdout, stderr } = await run(process.execPath, [SERVICE], { env, timeout: 20_000 })
      t.is(stderr, '')
      const pid = /^\[fdstore\] pid (\d+): /.exec(stdout)?.[1]
      t.is(
        stdout,
        [
          `[fdstore] pid ${pid}: not run by a service manager: no fd store`,
          `[fdstore] pid ${pid}: serving on ${join(tmpdir(), `fdpass-hits-${pid}.sock`)}`,
          `[fdstore] pid ${pid}: answered hits=1 pid=${pid}`,
          `[fdstore] pid ${pid}: closed cleanly`,
          '',
        ].join('\n'),
      )
      t.false(fs.existsSync(join(tmpdir(), `fdpass-hits-${pid}.sock`)))
    })
  },
)
