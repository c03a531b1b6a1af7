/**
 * The layout of src/, as README's Development section describes it: files
 * with one job each and at most about 350 lines; plumbing in src/internal/,
 * which takes the public files' types but never runs their code; and no
 * import cycle. And the Rust crates' (README, "The Rust core"): no module
 * cycle in any, and dependencies that run one way.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const root = path.join(__dirname, '..')
const src = path.join(root, 'src')
const files = (fs.readdirSync(src, { recursive: true }) as string[])
  .filter((f) => f.endsWith('.ts'))
  .map((f) => path.join('src', f))

/** The modules of this package a file imports (or re-exports) at run time: type-only imports left out. */
function runtimeImports(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8')
  return [...text.matchAll(/^(?:import|export)\b([^'"]*?)\bfrom '(\.[^']*)'/gm)]
    .filter((m) => !/^\s*type\b/.test(m[1]!))
    .map((m) => path.join(path.dirname(file), `${m[2]}.ts`))
    .filter((f) => files.includes(f))
}

test('no file in src/ is over 350 lines', (t) => {
  t.true(files.length > 20, files.join())
  const long = files.filter((f) => fs.readFileSync(path.join(root, f), 'utf8').split('\n').length > 350)
  t.deepEqual(long, [])
})

test('src/internal/ imports the public files for their types only', (t) => {
  const internal = files.filter((f) => f.startsWith(path.join('src', 'internal')))
  t.true(internal.length > 10)
  const reaching = internal.flatMap((f) =>
    runtimeImports(f)
      .filter((d) => !d.startsWith(path.join('src', 'internal')))
      .map((d) => `${f} -> ${d}`),
  )
  t.deepEqual(reaching, [])
})

test('the modules of src/ import one another without a cycle', (t) => {
  const cycles: string[] = []
  const done = new Set<string>()
  const visit = (file: string, stack: string[]): void => {
    const at = stack.indexOf(file)
    if (at >= 0) {
      cycles.push([...stack.slice(at), file].join(' -> '))
      return
    }
    if (done.has(file)) return
    done.add(file)
    for (const dep of runtimeImports(file)) visit(dep, [...stack, file])
  }
  for (const f of files) visit(f, [])
  t.deepEqual(cycles, [])
  // The check sees imports at all: fd-socket.ts runs the receiver's code.
  t.true(runtimeImports(path.join('src', 'fd-socket.ts')).includes(path.join('src', 'internal', 'receiver.ts')))
})

/**
 * The top-level modules of a Rust crate's `src/` and the ones each uses
 * (`crate::name`): a folder module (`socket/`, `socket.rs`) counts as one.
 */
function rustModules(srcDir: string): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>()
  for (const f of fs.readdirSync(srcDir, { recursive: true }) as string[]) {
    if (!f.endsWith('.rs') || f === 'lib.rs') continue
    const name = f.split(path.sep)[0]!.replace(/\.rs$/, '')
    const uses = graph.get(name) ?? new Set<string>()
    const text = fs.readFileSync(path.join(srcDir, f), 'utf8').replace(/^\s*\/\/.*$/gm, '')
    for (const m of text.matchAll(/\bcrate::(\w+)/g)) if (m[1] !== name) uses.add(m[1]!)
    // `use crate::{a, b::c}` names several.
    for (const m of text.matchAll(/\bcrate::\{([^}]*)\}/g))
      for (const part of m[1]!.split(',')) {
        const first = part.trim().split('::')[0]!
        if (first && first !== name) uses.add(first)
      }
    graph.set(name, uses)
  }
  return graph
}

/** The cycles of a module graph, each as `a -> b -> a`. */
function cyclesOf(graph: Map<string, Set<string>>): string[] {
  const cycles: string[] = []
  const done = new Set<string>()
  const visit = (mod: string, stack: string[]): void => {
    const at = stack.indexOf(mod)
    if (at >= 0) return void cycles.push([...stack.slice(at), mod].join(' -> '))
    if (done.has(mod)) return
    done.add(mod)
    for (const dep of graph.get(mod) ?? []) visit(dep, [...stack, mod])
  }
  for (const mod of graph.keys()) visit(mod, [])
  return cycles
}

const crates = ['fdpass', 'napi-plumbing', 'fdpass-node']

test('the modules of each Rust crate use one another without a cycle', (t) => {
  for (const name of crates) {
    const graph = rustModules(path.join(root, 'crates', name, 'src'))
    t.true(graph.size >= 5, `${name}: ${[...graph.keys()].join()}`)
    t.deepEqual(cyclesOf(graph), [], name)
  }
  // The check sees uses at all: the binding's socket uses the core-error
  // conversions, and a cycle is found when there is one.
  t.true(
    rustModules(path.join(root, 'crates', 'fdpass-node', 'src'))
      .get('socket')
      ?.has('errors'),
  )
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-layout-'))
  try {
    fs.mkdirSync(path.join(dir, 'b'))
    fs.writeFileSync(path.join(dir, 'a.rs'), 'use crate::{b::f, c};\n')
    fs.writeFileSync(path.join(dir, 'b', 'mod.rs'), 'mod g;\n')
    fs.writeFileSync(path.join(dir, 'b', 'g.rs'), 'use crate::a::x;\n')
    fs.writeFileSync(path.join(dir, 'c.rs'), '// crate::a is named only in a comment\n')
    t.deepEqual(cyclesOf(rustModules(dir)), ['a -> b -> a'])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('dependencies run one way: the binding over the plumbing and the core, which know nothing of it or each other', (t) => {
  const deps = (name: string): string => {
    const toml = fs.readFileSync(path.join(root, 'crates', name, 'Cargo.toml'), 'utf8')
    return toml.slice(toml.indexOf('[dependencies]')).split('\n[')[0]!
  }
  const mentions = (name: string, other: string): boolean =>
    (fs.readdirSync(path.join(root, 'crates', name, 'src'), { recursive: true }) as string[])
      .filter((f) => f.endsWith('.rs'))
      .some((f) => new RegExp(`\\b${other}::`).test(fs.readFileSync(path.join(root, 'crates', name, 'src', f), 'utf8')))
  t.regex(deps('fdpass-node'), /^fdpass\.workspace/m)
  t.regex(deps('fdpass-node'), /^napi-plumbing\.workspace/m)
  t.notRegex(deps('napi-plumbing'), /^fdpass/m)
  t.false(mentions('napi-plumbing', 'fdpass'))
  t.notRegex(deps('fdpass'), /napi/)
  t.false(mentions('fdpass', 'napi'))
  t.false(mentions('fdpass', 'napi_plumbing'))
  // The check sees a mention when there is one.
  t.true(mentions('fdpass-node', 'napi_plumbing'))
})
