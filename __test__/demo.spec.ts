import test from 'ava'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const demo = path.join(__dirname, '..', 'examples', 'demo.js')

test('the demo hands the open file to a child, which reads on from byte 32', async (t) => {
  const { stdout } = await run(process.execPath, [demo])
  t.regex(stdout, /\[parent\] read the first 32 bytes: "This line is read by the parent\."/)
  t.regex(stdout, /\[child\] {2}received "F" and fd \d+/)
  t.regex(stdout, /\[child\] {2}read on from byte 32, where the parent stopped/)
  t.regex(stdout, /\[child\] {2}\| This text is read by the child, through the fd it received:/)
  t.notRegex(stdout, /\| This line is read by the parent/)
  t.regex(stdout, /\[parent\] child exited with code 0/)
  // Both processes audit their own fds: nothing leaked, nothing closed by mistake.
  t.regex(stdout, /\[child\] {2}fd audit: ok/)
  t.regex(stdout, /\[parent\] fd audit: ok/)
})

test('the demo takes another file as its argument', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-demo-'))
  const file = path.join(dir, 'digits.txt')
  fs.writeFileSync(file, '0123456789'.repeat(4) + '\n')
  const { stdout } = await run(process.execPath, [demo, file])
  t.regex(stdout, /read the first 32 bytes: "01234567890123456789012345678901"/)
  t.regex(stdout, /\| 23456789\n/)
  t.regex(stdout, /\[child\] {2}fd audit: ok/)
  t.regex(stdout, /\[parent\] fd audit: ok/)
  fs.rmSync(dir, { recursive: true })
})

test('npm run demo -- file: a relative name is found from the directory npm was started in (INIT_CWD)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-demo-'))
  fs.writeFileSync(path.join(dir, 'mine.txt'), 'abcdefghij'.repeat(4) + '\n')
  // As npm runs it: in the package's directory, with INIT_CWD set to the caller's.
  const { stdout } = await run(process.execPath, [demo, 'mine.txt'], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, INIT_CWD: dir },
  })
  t.regex(stdout, /read the first 32 bytes: "abcdefghijabcdefghijabcdefghijab"/)
  t.regex(stdout, /\[parent\] fd audit: ok/)
  fs.rmSync(dir, { recursive: true })
})
