/**
 * An error code has one class wherever it is made, the one Node gives it:
 * `ERR_INVALID_ARG_VALUE` is a `TypeError` from the native core as from the
 * TypeScript layer.
 */
import test from 'ava'

import { bind, connect, listen } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

// A NUL byte inside a path is found by the core, not by the TypeScript checks.
const badPath = '/tmp/fdpass-\0-inner-nul'

for (const [name, call] of [
  ['connect', () => connect(badPath)],
  ['listen', () => listen(badPath)],
  ['bind', () => bind(badPath)],
] as const) {
  test.serial(`${name}() with a NUL byte inside the path rejects with a TypeError ERR_INVALID_ARG_VALUE`, async (t) => {
    await withFdAudit(t, async () => {
      const err = await t.throwsAsync(call(), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
      t.regex(err?.message ?? '', /NUL byte/)
    })
  })
}
