// Finds the fenced code blocks of the project's Markdown docs, for the test
// that runs them (__test__/docs.spec.ts).
//
// A block is one of:
//   ```js    a CommonJS program          ```mjs   an ES module program
//   ```ts    a TypeScript program (an ES module: type-checked strictly, then run)
// or it is marked illustrative by an HTML comment on the line just before its
// fence, which says why it is not run:
//   <!-- illustrative: the output of the error above, not code -->
//
//   node scripts/doc-blocks.js        # lists every block: file:line, how it is handled
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

/**
 * Not checked here: generated Markdown (the API reference, whose blocks are
 * declarations that scripts/api-reference.js checks; benchmark reports),
 * and what is not the project's (dependencies, build output).
 */
const SKIP_DIRS = new Set(['node_modules', 'target', 'dist', '.git', 'results'])
const SKIP_FILES = new Set(['docs/api.md'])

/** The Markdown files whose blocks are checked: every doc of the project but generated ones. */
function docFiles(dir = '') {
  const found = []
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${entry.name}` : entry.name
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) found.push(...docFiles(rel))
    } else if (entry.name.endsWith('.md') && !SKIP_FILES.has(rel)) found.push(rel)
  }
  return found.sort()
}

/** How each runnable fence language runs. */
const RUNNABLE = { js: 'commonjs', cjs: 'commonjs', mjs: 'module', ts: 'typescript' }

/**
 * @typedef {{ file: string, line: number, lang: string, code: string,
 *   kind: 'commonjs' | 'module' | 'typescript' | undefined, illustrative: string | undefined }} DocBlock
 */

/** The fenced blocks of one Markdown text. @returns {DocBlock[]} */
function blocksOf(file, text) {
  const lines = text.split('\n')
  const blocks = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+|~~~+)\s*([\w-]*)/.exec(lines[i])
    if (!open) continue
    const fence = open[2]
    const lang = open[3].toLowerCase()
    const body = []
    let j = i + 1
    while (j < lines.length && !lines[j].trimStart().startsWith(fence)) body.push(lines[j++])
    if (j === lines.length) throw new Error(`${file}:${i + 1}: the code block is never closed`)
    let k = i - 1
    while (k >= 0 && lines[k].trim() === '') k--
    const mark = k >= 0 ? /^<!--\s*illustrative:\s*(.+?)\s*-->$/.exec(lines[k].trim()) : null
    blocks.push({
      file,
      line: i + 1,
      lang,
      code: body.join('\n') + '\n',
      kind: RUNNABLE[lang],
      illustrative: mark ? mark[1] : undefined,
    })
    i = j
  }
  return blocks
}

/** Every block of every doc file that exists. @returns {DocBlock[]} */
function docBlocks() {
  const all = []
  for (const file of docFiles()) all.push(...blocksOf(file, fs.readFileSync(path.join(root, file), 'utf8')))
  return all
}

module.exports = { blocksOf, docBlocks, docFiles }

if (require.main === module) {
  for (const b of docBlocks()) {
    const how =
      b.illustrative !== undefined
        ? `illustrative: ${b.illustrative}`
        : b.kind
          ? `runs as ${b.kind}`
          : 'NOT RUN, NOT MARKED'
    console.log(`${b.file}:${b.line} \`\`\`${b.lang}  ${how}`)
  }
}
