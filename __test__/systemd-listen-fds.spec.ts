/**
 * listenFds / listenFdsByName as a service manager's child sees them: each
 * case runs in a child process whose LISTEN_PID is its own pid (a shell sets
 * it to $$, then execs node in the same process) and which inherits two
 * socketPair ends as fds 3 and 4.
 */
import test from 'ava'
import { spawn } from 'node:child_process'

import { closeFds, socketPair } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

/** Runs `code` (CommonJS, with `systemd` = require('fdpass/systemd')) in an activated child with fds 3 and 4; resolves with its JSON output. */
function activated(env: Record<string, string>, code: string, pid = '$$'): Promise<unknown> {
  const [a, b] = socketPair('stream')
  const script = `
    const systemd = require('fdpass/systemd')
    const out = (v) => process.stdout.write(JSON.stringify(v))
    const attempt = (fn) => { try { return fn() } catch (e) { return { code: e.code, syscall: e.syscall, name: e.name } } }
    ${code}`
  const child = spawn('sh', ['-c', `LISTEN_PID=${pid} exec "$0" -e "$1"`, process.execPath, script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    cwd: __dirname,
    stdio: ['ignore', 'pipe', 'pipe', a, b],
  })
  closeFds([a, b])
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve, reject) => {
    child.on('close', (status) => {
      if (status !== 0) reject(new Error(`exit ${status}: ${stderr}`))
      else resolve(JSON.parse(stdout))
    })
  })
}
test.serial('listenFdsByName: names from LISTEN_FDNAMES; the variables stay unless unsetEnvironment', async (t) => {
  await withFdAudit(t, async () => {
    const result = await activated(
      { LISTEN_FDS: '2', LISTEN_FDNAMES: 'web:web' },
      `const first = Object.fromEntries(systemd.listenFdsByName())
       const kept = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'].filter((k) => k in process.env)
       const second = systemd.listenFds({ unsetEnvironment: true })
       const gone = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'].filter((k) => k in process.env)
       out({ first, kept, second, gone, third: systemd.listenFds() })`,
    )
    t.deepEqual(result, {
      first: { web: [3, 4] },
      kept: ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'],
      second: [3, 4],
      gone: [],
      third: [],
    })
  })
})

test.serial("listenFdsByName: without LISTEN_FDNAMES every fd is 'unknown'", async (t) => {
  await withFdAudit(t, async () => {
    t.deepEqual(await activated({ LISTEN_FDS: '2' }, 'out(Object.fromEntries(systemd.listenFdsByName()))'), {
      unknown: [3, 4],
    })
  })
})

test.serial('listenFds: nothing for another process, nothing without LISTEN_PID', async (t) => {
  await withFdAudit(t, async () => {
    t.deepEqual(await activated({ LISTEN_FDS: '2' }, 'out(systemd.listenFds())', '1'), [])
    t.deepEqual(await activated({ LISTEN_FDS: '2' }, 'delete process.env.LISTEN_PID; out(systemd.listenFds())'), [])
  })
})

test.serial(
  'listenFds: malformed variables throw ERR_SYSTEMD_ENVIRONMENT (and unsetEnvironment still unsets); a missing fd EBADF',
  async (t) => {
    await withFdAudit(t, async () => {
      t.deepEqual(
        await activated(
          { LISTEN_FDS: '2', LISTEN_FDNAMES: 'only-one' },
          `out([attempt(() => systemd.listenFdsByName({ unsetEnvironment: true })), 'LISTEN_FDS' in process.env])`,
        ),
        [{ code: 'ERR_SYSTEMD_ENVIRONMENT', name: 'Error' }, false],
      )
      t.deepEqual(await activated({ LISTEN_FDS: 'two' }, 'out(attempt(() => systemd.listenFds()))'), {
        code: 'ERR_SYSTEMD_ENVIRONMENT',
        name: 'Error',
      })
      t.deepEqual(await activated({ LISTEN_FDS: '2' }, 'out(attempt(() => systemd.listenFds()))', 'not-a-pid'), {
        code: 'ERR_SYSTEMD_ENVIRONMENT',
        name: 'Error',
      })
      // fds 3 and 4 are open, but not the 1000th.
      t.deepEqual(await activated({ LISTEN_FDS: '1000' }, 'out(attempt(() => systemd.listenFds()))'), {
        code: 'EBADF',
        syscall: 'fcntl',
        name: 'Error',
      })
      t.deepEqual(
        await activated({ LISTEN_FDS: '2' }, 'out(attempt(() => systemd.listenFds({ unsetEnvironment: 1 })))'),
        {
          code: 'ERR_INVALID_ARG_TYPE',
          name: 'TypeError',
        },
      )
    })
  },
)
