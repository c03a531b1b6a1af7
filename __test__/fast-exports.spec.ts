/**
 * The compiled plumbing modules (dist/src/internal/) keep exports objects
 * with fast properties. Every call through them reads their exports
 * (`validate_1.validateFd`, `lean_1.scratchInts`), and V8's optimized code
 * reads a fast-properties object inline but calls out to a lookup for a
 * dictionary-mode one. TypeScript compiles a re-export of an imported
 * binding (`export { X }` after `import { X }`) to an accessor defined over
 * a data property, which turns the exports object into a dictionary: one
 * such line in validate.ts cost the raw calls about 200 instructions per
 * round trip. Checked on the built package, in a child process that may use
 * V8's %HasFastProperties.
 */
import test from 'ava'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

const internal = path.join(__dirname, '..', 'dist', 'src', 'internal')

const PROBE = `
const fs = require('node:fs')
const path = require('node:path')
const dir = process.argv[1]
const slow = fs.readdirSync(dir).filter((f) => f.endsWith('.js')).filter((f) => !%HasFastProperties(require(path.join(dir, f))))
console.log(JSON.stringify(slow))`

test('every compiled internal module has an exports object with fast properties', (t) => {
  const modules = fs.readdirSync(internal).filter((f) => f.endsWith('.js'))
  t.true(modules.includes('validate.js') && modules.includes('lean.js'), modules.join())
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '-e', PROBE, internal], { encoding: 'utf8' })
  t.deepEqual(JSON.parse(out), [])
})
