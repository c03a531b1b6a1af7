/**
 * Placing a socket fails as a bind, whichever call placed it: `bind()` and
 * `listen()` on a path whose directory is missing reject with `ENOENT` and
 * `syscall: 'bind'` (not `'listen'`, nor the lock file's `'open'`), a
 * message that names the path and says what to do, and no fd left open.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { bind, listen } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-bind-errors-'))
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }))

const missing = path.join(tmp, 'no-such-dir', 's.sock')

const cases = [
  ['bind() of a datagram socket', () => bind(missing)],
  ['listen() of a stream socket', () => listen(missing)],
  ['listen() of a seqpacket socket', () => listen(missing, { type: 'seqpacket' })],
] as const

for (const [what, place] of cases) {
  test.serial(`${what} in a missing directory: ENOENT from bind, naming the path`, async (t) => {
    await withFdAudit(t, async () => {
      const err = (await place().then(
        () => t.fail('placed a socket in a directory that does not exist'),
        (e: unknown) => e,
      )) as NodeJS.ErrnoException & { address?: string }
      t.true(err instanceof Error)
      t.is(err.code, 'ENOENT')
      t.is(err.syscall, 'bind')
      t.is(err.errno, -os.constants.errno.ENOENT)
      t.is(err.address, missing)
      t.true(err.message.startsWith('bind ENOENT'), err.message)
      t.true(err.message.includes('create it first'), err.message)
      t.true(err.message.includes(missing), err.message)
      t.false(fs.existsSync(path.dirname(missing)), 'nothing was created')
    })
  })
}
