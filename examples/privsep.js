// Privilege separation: a privileged parent opens a file that only it may
// read and hands the open fd to an unprivileged child (uid/gid of `nobody`).
// The child cannot open the file by name, but reads it through the fd.
//
//   node examples/privsep.js      (as root; as another user it runs the same
//                                  exchange without dropping privileges)
'use strict'
const { execFileSync, spawn, spawnSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { auditFds, openFds } = require('./fd-audit')
const { FdSocket } = require('fdpass')

const log = (line) => console.log(`[parent] ${line}`)
let child

/** The uid and gid of `nobody`. */
function nobody() {
  try {
    const id = (flag) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim())
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    return { uid: 65534, gid: 65534 } // the usual values on Linux
  }
}

async function main() {
  // Warm up what Node opens lazily and keeps (the child-process signal pipe,
  // libuv's spare /dev/null fd that comes with its first stream: stdout when
  // it is a pipe), then snapshot.
  spawnSync(process.execPath, ['-e', ''])
  process.stdout.write('')
  const before = openFds()

  const root = process.getuid() === 0
  const drop = root ? nobody() : undefined
  if (root) log(`running as root; the child will run as nobody (uid ${drop.uid}, gid ${drop.gid})`)
  else
    log(
      `not running as root (uid ${process.getuid()}): cannot drop privileges, so the child runs as this same user and could open the file itself; the fd is handed over all the same`,
    )

  // A secret only we may read: mode 0600 in a mode 0700 directory.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-privsep-'))
  fs.chmodSync(dir, 0o700)
  const file = path.join(dir, 'secret.txt')
  const secret = `the secret is ${crypto.randomBytes(8).toString('hex')}`
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 })
  log(`wrote ${file} (mode 0600, in a mode 0700 directory)`)

  try {
    const fd = fs.openSync(file, 'r')
    log(`opened it as fd ${fd}`)

    const [mine, theirs] = FdSocket.pair()
    child = spawn(process.execPath, [path.join(__dirname, 'privsep-child.js'), file, root ? 'denied' : 'allowed'], {
      stdio: ['ignore', 'inherit', 'inherit', theirs.fd],
      ...drop, // uid and gid: the child starts unprivileged
    })
    theirs.close()
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
    log(`spawned the child (pid ${child.pid}) with a socketpair end as its fd 3`)

    await mine.send('secret', [fd])
    fs.closeSync(fd)
    log('sent the open fd and closed our copy')

    // The child sends back what it read through the fd.
    const { data } = await mine.receive()
    const matches = data.toString() === secret
    log(
      matches
        ? 'the child read the secret through the fd: it matches'
        : `the child read something else: ${JSON.stringify(data.toString())}`,
    )
    mine.close()
    const status = await exited
    log(`child exited with ${typeof status === 'string' ? status : `code ${status}`}`)

    fs.rmSync(dir, { recursive: true })
    const clean = await auditFds(before, [], log)
    log(`fd audit: ${clean ? 'ok' : 'FAILED'}`)
    const ok = matches && status === 0 && clean
    log(ok ? 'privsep: ok' : 'privsep: FAILED')
    process.exitCode = ok ? 0 : 1
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// A bound on the whole run: never hang, whatever goes wrong.
setTimeout(() => {
  log('timed out')
  child?.kill()
  process.exit(2)
}, 20_000).unref()

main().catch((err) => {
  log(`error: ${err.stack ?? err}`)
  child?.kill()
  process.exit(1)
})
