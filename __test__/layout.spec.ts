/**
 * The layout of src/, as README's Development section describes it: files
 * with one job each and at most about 350 lines; plumbing in src/internal/,
 * which takes the public files' types but never runs their code; and no
 * import cycle.
 */
import test from 'ava'
import * as fs from 'node:fs'
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
