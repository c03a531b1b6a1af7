/**
 * The API reference (docs/api.md, generated from the TSDoc by
 * scripts/api-reference.js) is what the code says, documents every export,
 * and agrees with README: every option, default and error code in the code
 * appears in both, and every one README names exists in the code.
 */
import test from 'ava'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const root = path.join(__dirname, '..')
const read = (file: string): string => fs.readFileSync(path.join(root, file), 'utf8')
const readme = read('README.md')
const reference = read('docs/api.md')
/** The files under `dir` (relative to the root), in every subfolder, whose names end in `ext`. */
const filesUnder = (dir: string, ext: string): string[] =>
  (fs.readdirSync(path.join(root, dir), { recursive: true }) as string[])
    .filter((f) => f.endsWith(ext))
    .map((f) => read(`${dir}/${f}`))
const sources = filesUnder('src', '.ts')
const rust = ['crates/fdpass/src', 'crates/napi-plumbing/src', 'crates/fdpass-node/src'].flatMap((dir) =>
  filesUnder(dir, '.rs'),
)
const code = [...sources, ...rust, read('index.ts')].join('\n')

test('docs/api.md is generated from the current code, and every export and member has TSDoc', (t) => {
  const out = execFileSync(process.execPath, [path.join(root, 'scripts', 'api-reference.js'), '--check'], {
    encoding: 'utf8',
  })
  t.regex(out, /matches the code/)
})

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { generate } = require('../scripts/api-reference.js') as {
  generate(entry?: string): { text: string; undocumented: string[] }
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { blocksOf } = require('../scripts/doc-blocks.js') as {
  blocksOf(file: string, text: string): Array<{ line: number; lang: string; kind?: string; illustrative?: string }>
}

test('the reference check finds an undocumented export and an undocumented member', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-reference-'))
  const entry = path.join(dir, 'index.d.ts')
  fs.writeFileSync(
    entry,
    [
      '/** Documented. */',
      'export declare function documented(): void;',
      'export declare function bare(): void;',
      '/** Documented too. */',
      'export interface Options {',
      '    /** Documented member. */',
      '    a?: number;',
      '    b?: number;',
      '}',
      '',
    ].join('\n'),
  )
  const { text, undocumented } = generate(entry)
  fs.rmSync(dir, { recursive: true })
  t.deepEqual(undocumented.sort(), ['Options.b', 'bare'])
  t.regex(text, /## documented\n\n```ts\n\/\*\* Documented\. \*\/\nexport function documented\(\): void;/)
})

test('the doc block finder: runnable fences, illustrative marks with a reason, unmarked blocks', (t) => {
  const md = [
    '```js',
    'a()',
    '```',
    '',
    '<!-- illustrative: output, not code -->',
    '',
    '```',
    'out',
    '```',
    '```sh',
    'ls',
    '```',
    '```ts',
    'const x: number = 1',
    '```',
  ].join('\n')
  const blocks = blocksOf('x.md', md)
  t.deepEqual(
    blocks.map((b) => [b.line, b.lang, b.kind, b.illustrative]),
    [
      [1, 'js', 'commonjs', undefined],
      [7, '', undefined, 'output, not code'],
      [10, 'sh', undefined, undefined],
      [13, 'ts', 'typescript', undefined],
    ],
  )
  t.throws(() => blocksOf('y.md', '```js\nnever closed\n'), { message: /y\.md:1: the code block is never closed/ })
})

test('README links to the API reference', (t) => {
  t.true(readme.includes('](docs/api.md)'))
})

/** fdpass's error codes, as the code raises them. */
const codes = new Set([...code.matchAll(/['"]((?:ERR_[A-Z_]+)|ABORT_ERR)['"]/g)].map((m) => m[1]!))

test('every error code the code raises is in README and in the reference, and README names no other', (t) => {
  t.true(codes.size >= 12, [...codes].join())
  for (const c of codes) {
    t.true(readme.includes(`\`${c}\``), `README documents ${c}`)
    t.true(reference.includes(`\`${c}\``), `docs/api.md documents ${c}`)
  }
  for (const m of readme.matchAll(/`(ERR_[A-Z_]+|ABORT_ERR)`/g))
    t.true(codes.has(m[1]!), `README's ${m[1]} exists in the code`)
})

/** Evaluates a default as the code writes it: a number, a constant, `64 * 1024`, `2 ** 20`. */
function evaluate(expr: string): number {
  const named = new RegExp(`(?:export )?const ${expr}(?:: number)? = ([^\\n]+)`).exec(code)
  const literal = named ? named[1]!.trim() : expr
  if (!/^[\d\s*+]+$/.test(literal)) throw new Error(`cannot evaluate ${expr}`)
  return Function(`return (${literal})`)() as number
}

/** The integer options as the code checks them: integerOption(value, 'name', min, max, default). */
const checkedOptions = [...code.matchAll(/integerOption\([^,]+, '(\w+)', ([^,]+), ([^,]+), ([^)]+)\)/g)].map((m) => ({
  name: m[1]!,
  min: m[2]!.trim(),
  max: m[3]!.trim(),
  fallback: m[4]!.trim(),
}))
/** Those with a default (mode is only range-checked). */
const integerOptions = checkedOptions
  .filter((o) => o.name !== 'mode')
  .map((o) => ({ name: o.name, fallback: evaluate(o.fallback) }))

/** Text without spaces or comment stars, and with one spelling of ranges: "0 to 2^20", "0–253". */
const squeeze = (text: string): string =>
  text
    .replace(/[\s*]+/g, '')
    .replace(/–/g, 'to')
    .replace(/−/g, '-')
/** The ways docs may write a bound: as the code does (2 ** 20 as 2^20), or its value. */
function spellings(expr: string): string[] {
  const named = /^[A-Z_]+$/.test(expr)
    ? new RegExp(`(?:export )?const ${expr}(?:: number)? = ([^\\n]+)`).exec(code)
    : null
  const literal = (named ? named[1]! : expr).trim()
  const forms = [literal.replace(/\*\*/g, '^')]
  if (/^[\d\s*+-]+$/.test(literal)) forms.push(String(Function(`return (${literal})`)() as number))
  return forms.map(squeeze)
}
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

test("every integer option's range is in README and in the doc comment of its declaration", (t) => {
  t.true(checkedOptions.length >= 8)
  const ref = squeeze(reference)
  const guide = squeeze(readme)
  for (const { name, min, max } of checkedOptions) {
    const ranges = spellings(min).flatMap((lo) => spellings(max).map((hi) => `${lo}to${hi}`))
    const any = `(?:${ranges.map(escape).join('|')})`
    // (t.true, not t.regex: a failure would print all of README.)
    t.true(
      new RegExp(`${any}(?:(?!\\?:).)*?\\b${name}\\?:`).test(ref),
      `docs/api.md gives ${name}'s range (${ranges[0]})`,
    )
    // In README: after the option's name, within its table row or sentence.
    t.true(
      new RegExp(`\`${name}[\`,](?:(?!\\|\\|).){0,160}?${any}`).test(guide),
      `README gives ${name}'s range (${ranges[0]})`,
    )
  }
})

test('every integer option and its default are in README and the reference', (t) => {
  t.true(integerOptions.length >= 7)
  for (const { name, fallback } of integerOptions) {
    // README: a table row or a sentence that names the option and its default.
    const lines = readme.split('\n').filter((l) => l.includes(`\`${name}\``) || l.includes(`${name}?`))
    const said =
      lines.some((l) => new RegExp(`\\b${fallback}\\b`).test(l)) ||
      new RegExp(`\`${name}\`[^.]*default ${fallback}\\b`).test(readme.replace(/\n/g, ' '))
    t.true(said, `README gives ${name}'s default, ${fallback}`)
    // docs/api.md: the doc comment just above the option's declaration gives the default.
    t.regex(
      reference,
      new RegExp(`default ${fallback}\\b(?:(?!\\?:)[\\s\\S])*?\\b${name}\\?:`),
      `docs/api.md gives ${name}'s default`,
    )
    t.regex(reference, new RegExp(`\\b${name}\\?:`), `docs/api.md declares ${name}`)
  }
})

/** The properties of the exported options interfaces, as the code declares them. */
const declaredOptions = new Set(
  [...code.matchAll(/export interface \w+Options\b[^{]*\{([\s\S]*?)\n\}/g)].flatMap((m) =>
    [...m[1]!.matchAll(/^ {2}(\w+)\?:/gm)].map((p) => p[1]!),
  ),
)

test("every option the code declares is in README, and README's option tables name no other", (t) => {
  for (const name of [
    'framing',
    'maxBytes',
    'maxFds',
    'readAhead',
    'maxQueuedFds',
    'backlog',
    'mode',
    'replaceStale',
    'allowPeer',
    'type',
    'signal',
    'max',
  ]) {
    t.true(declaredOptions.has(name), `the code declares ${name}`)
  }
  for (const name of declaredOptions)
    t.true(readme.includes(`\`${name}\``) || readme.includes(`${name}?`), `README documents ${name}`)
  // The options table of SocketOptions: each row is an option of the code.
  const table = readme.slice(readme.indexOf('| option | default | meaning |'))
  const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2)
  t.true(rows.length >= 5)
  for (const row of rows) {
    const name = /^\| `(\w+)`/.exec(row)?.[1]
    t.true(name !== undefined && declaredOptions.has(name), `README's option ${name} exists in the code`)
  }
})
