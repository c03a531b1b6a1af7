/**
 * The spec files that run on Linux only (__test__/linux-only.json, which
 * ava.config.mjs leaves out elsewhere): off Linux each shows as a skipped
 * test that says why; on Linux, the list names files that exist.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'

const root = path.join(__dirname, '..')
const linuxOnly = JSON.parse(fs.readFileSync(path.join(__dirname, 'linux-only.json'), 'utf8')) as Record<string, string>

if (process.platform === 'linux') {
  test('every spec file listed as Linux-only exists, with a reason', (t) => {
    const files = Object.entries(linuxOnly)
    t.true(files.length > 0)
    for (const [file, why] of files) {
      t.true(fs.existsSync(path.join(root, file)), file)
      t.true(why.length > 10, `${file} says why it is Linux-only`)
    }
  })
} else {
  for (const [file, why] of Object.entries(linuxOnly)) {
    test.skip(`${path.basename(file)} (skipped: Linux only: ${why})`, () => {})
  }
}
