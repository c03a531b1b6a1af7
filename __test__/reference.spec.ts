/**
 * The API reference (docs/api.md, generated from the TSDoc by
 * scripts/api-reference.js) is what the code says, documents every export,
 * and agrees with README: every option, default and error code in the code
 * appears in both, and every one README names exists in the code.
 */
import test from 'ava'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

const root = path.join(__dirname, '..')
const read = (file: string): string => fs.readFileSync(path.join(root, file), 'utf8')
const readme = read('README.md')
const reference = read('docs/api.md')
const sources = fs.readdirSync(path.join(root, 'src')).map((f) => read(`src/${f}`))
const rust = ['crates/fdpass/src', 'crates/fdpass-node/src'].flatMap((dir) =>
  fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith('.rs')).map((f) => read(`${dir}/${f}`)),
)
const code = [...sources, ...rust, read('index.ts')].join('\n')

test('docs/api.md is generated from the current code, and every export and member has TSDoc', (t) => {
  const out = execFileSync(process.execPath, [path.join(root, 'scripts', 'api-reference.js'), '--check'], {
    encoding: 'utf8',
  })
  t.regex(out, /matches the code/)
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
  for (const m of readme.matchAll(/`(ERR_[A-Z_]+|ABORT_ERR)`/g)) t.true(codes.has(m[1]!), `README's ${m[1]} exists in the code`)
})

/** Evaluates a default as the code writes it: a number, a constant, `64 * 1024`, `2 ** 20`. */
function evaluate(expr: string): number {
  const named = new RegExp(`(?:export )?const ${expr} = ([^\\n]+)`).exec(code)
  const literal = named ? named[1]!.trim() : expr
  if (!/^[\d\s*+]+$/.test(literal)) throw new Error(`cannot evaluate ${expr}`)
  return Function(`return (${literal})`)() as number
}

/** Every integer option with its default: integerOption(value, 'name', min, max, default). */
const integerOptions = [...code.matchAll(/integerOption\([^,]+, '(\w+)', ([^,]+), ([^,]+), ([^)]+)\)/g)]
  .filter((m) => m[1] !== 'mode') // mode has no default: it is only range-checked
  .map((m) => ({ name: m[1]!, fallback: evaluate(m[4]!.trim()) }))

test('every integer option and its default are in README and the reference', (t) => {
  t.true(integerOptions.length >= 7)
  for (const { name, fallback } of integerOptions) {
    // README: a table row or a sentence that names the option and its default.
    const lines = readme.split('\n').filter((l) => l.includes(`\`${name}\``) || l.includes(`${name}?`))
    const said = lines.some((l) => new RegExp(`\\b${fallback}\\b`).test(l)) ||
      new RegExp(`\`${name}\`[^.]*default ${fallback}\\b`).test(readme.replace(/\n/g, ' '))
    t.true(said, `README gives ${name}'s default, ${fallback}`)
    // docs/api.md: the doc comment just above the option's declaration gives the default.
    t.regex(reference, new RegExp(`default ${fallback}\\b(?:(?!\\?:)[\\s\\S])*?\\b${name}\\?:`), `docs/api.md gives ${name}'s default`)
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
  for (const name of ['framing', 'maxBytes', 'maxFds', 'readAhead', 'maxQueuedFds', 'backlog', 'mode', 'replaceStale', 'allowPeer', 'type', 'signal', 'max']) {
    t.true(declaredOptions.has(name), `the code declares ${name}`)
  }
  for (const name of declaredOptions) t.true(readme.includes(`\`${name}\``) || readme.includes(`${name}?`), `README documents ${name}`)
  // The options table of SocketOptions: each row is an option of the code.
  const table = readme.slice(readme.indexOf('| option | default | meaning |'))
  const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2)
  t.true(rows.length >= 5)
  for (const row of rows) {
    const name = /^\| `(\w+)`/.exec(row)?.[1]
    t.true(name !== undefined && declaredOptions.has(name), `README's option ${name} exists in the code`)
  }
})
