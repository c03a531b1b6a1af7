/**
 * Executable docs: every fenced code block of README.md (and of every other
 * Markdown doc scripts/doc-blocks.js finds) runs as written, or is marked illustrative
 * with a reason. Each runnable block is its own file in a fresh temporary
 * directory (its working directory), where `fdpass` resolves to this build:
 * ```js blocks run as CommonJS, ```mjs as ES modules, ```ts blocks are
 * type-checked (strict, module nodenext), compiled by tsc and run as ES modules. A block
 * passes when it exits 0 within 30 s (longer under emulation) with nothing on stderr (so no warning
 * either, e.g. a FileHandle closed by garbage collection) and with the fds
 * it started with, no more (helpers/block-fd-audit.cjs, preloaded).
 *
 * Also: every example in examples/ is run by a spec and listed in README.
 */
import test from 'ava'
import { execFile, type ExecFileException } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { slowdown } from './helpers/emulation.js'

interface DocBlock {
  file: string
  line: number
  lang: string
  code: string
  kind: 'commonjs' | 'module' | 'typescript' | undefined
  illustrative: string | undefined
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { docBlocks } = require('../scripts/doc-blocks.js') as { docBlocks(): DocBlock[] }

const root = path.join(__dirname, '..')
const blocks = docBlocks()
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-docs-'))
fs.mkdirSync(path.join(work, 'node_modules'))
fs.symlinkSync(root, path.join(work, 'node_modules', 'fdpass'), 'dir')
fs.writeFileSync(path.join(work, 'package.json'), '{ "private": true }\n')
test.after.always(() => fs.rmSync(work, { recursive: true, force: true }))

const EXT = { commonjs: 'cjs', module: 'mjs', typescript: 'mts' } as const
const fileOf = (b: DocBlock): string => path.join(work, `${b.file.replace(/[^\w]+/g, '_')}_${b.line}.${EXT[b.kind!]}`)

function run(
  file: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, env, timeout: 30_000 * slowdown, encoding: 'utf8' },
      (err: ExecFileException | null, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })
      },
    )
  })
}

test('every code block of the docs is runnable or marked illustrative with a reason', (t) => {
  t.true(blocks.length > 0)
  const unmarked = blocks.filter((b) => b.kind === undefined && b.illustrative === undefined)
  t.deepEqual(
    unmarked.map((b) => `${b.file}:${b.line} \`\`\`${b.lang}`),
    [],
    'give these a js, mjs or ts fence, or an <!-- illustrative: why --> comment before the fence',
  )
  t.log(
    `${blocks.filter((b) => b.illustrative === undefined).length} blocks run, ${blocks.filter((b) => b.illustrative !== undefined).length} illustrative`,
  )
})

const runnable = blocks.filter((b) => b.kind !== undefined && b.illustrative === undefined)
for (const b of runnable) fs.writeFileSync(fileOf(b), b.code)

const typescript = runnable.filter((b) => b.kind === 'typescript')
if (typescript.length > 0) {
  test.serial('the TypeScript blocks type-check (strict, module nodenext) and compile', async (t) => {
    fs.writeFileSync(
      path.join(work, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'ES2022',
          strict: true,
          outDir: 'compiled',
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [path.join(root, 'node_modules', '@types')],
        },
        files: typescript.map((b) => path.basename(fileOf(b))),
      }),
    )
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    // tsc loads no fdpass code: it runs without the preload of a sanitizer run
    // (scripts/sanitize.sh), under which it is many times slower.
    const { LD_PRELOAD: _preload, ...plain } = process.env
    const { code, stdout, stderr } = await run(process.execPath, [tsc, '-p', work], work, plain)
    t.is(stdout + stderr, '')
    t.is(code, 0)
  })
}

for (const b of runnable) {
  test.serial(`${b.file}:${b.line} runs as ${b.kind}`, async (t) => {
    // A TypeScript block runs as tsc compiled it (an .mjs), with no loader of its own in the process.
    const file =
      b.kind === 'typescript' ? path.join(work, 'compiled', path.basename(fileOf(b), '.mts') + '.mjs') : fileOf(b)
    const args = ['--require', path.join(__dirname, 'helpers', 'block-fd-audit.cjs'), file]
    const { code, stdout, stderr } = await run(process.execPath, args, work)
    t.is(stderr, '', 'nothing on stderr')
    t.is(code, 0, stdout)
    t.log(stdout.trim())
  })
}

const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
const specs = fs
  .readdirSync(__dirname)
  .filter((f) => f.endsWith('.spec.ts'))
  .map((f) => fs.readFileSync(path.join(__dirname, f), 'utf8'))
  .join('\n')

test('every example is listed in README, and every program among them is run by a spec', (t) => {
  const examples = fs.readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.js'))
  t.true(examples.length > 0)
  for (const name of examples) {
    t.true(readme.includes(`examples/${name}`), `README lists examples/${name}`)
    const source = fs.readFileSync(path.join(root, 'examples', name), 'utf8')
    // Programs (not the children and helpers they start or load) say how to run them.
    if (/^\/\/\s+node examples\//m.test(source)) t.true(specs.includes(`'${name}'`), `a spec runs ${name}`)
  }
})
