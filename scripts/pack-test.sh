#!/usr/bin/env bash
# Packaging test: what `npm publish` would ship works for a user with no
# compiler and no install script.
#
#   scripts/pack-test.sh        # after `npm run build`
#
# 1. Checks the main package's file list (`npm pack --dry-run --json`): only
#    the built JavaScript, types, loader, README, CHANGELOG, LICENSE and
#    package.json; no Rust sources, tests, target/ or binaries; no
#    dependencies or install scripts.
# 2. Packs the main package and this platform's binary package (npm/<platform>
#    with the built .node copied in, as `napi artifacts` does in the release),
#    prints their sizes and runs publint and arethetypeswrong on the tarball.
# 3. Installs both tarballs into a fresh project, with a PATH that has node,
#    npm, python3 and basic tools but no cargo, rustc, cc or gcc; then sends an
#    fd to a child process that reads from it, from CommonJS and from ESM, and
#    type-checks a TypeScript consumer (module node16, strict) that uses
#    `import` and `require`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n--- %s\n' "$*"; }
fail() { echo "pack-test: $*" >&2; exit 1; }

# shellcheck disable=SC2016 # JavaScript template literals, not shell
key=$(node -p '
  process.platform === "linux"
    ? `linux-${process.arch}-${process.report.getReport().header.glibcVersionRuntime ? "gnu" : "musl"}`
    : `${process.platform}-${process.arch}`')
binary="fdpass.$key.node"
for f in "$binary" dist/index.js binding.js; do
  [ -f "$f" ] || fail "$f is missing: build first (npm run build)"
done
[ -d "npm/$key" ] || fail "no platform package npm/$key"

work=$(mktemp -d "${TMPDIR:-/tmp}/fdpass-pack-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tarballs"

step "main package: file list"
npm pack --dry-run --json --ignore-scripts >"$work/pack.json" 2>/dev/null
node - "$work/pack.json" <<'EOF'
const fs = require('node:fs')
const [info] = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const files = info.files.map((f) => f.path).sort()
const allowed = [
  /^package\.json$/, /^README\.md$/, /^CHANGELOG\.md$/, /^LICENSE$/, /^binding\.js$/, /^binding\.d\.ts$/,
  /^dist\/(src\/([\w-]+\/)*)?[\w-]+\.(js|mjs|d\.ts|d\.mts)$/,
]
const required = [
  'package.json', 'README.md', 'CHANGELOG.md', 'LICENSE', 'binding.js', 'binding.d.ts',
  'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'dist/binding.d.ts',
  // The fdpass/usocket entry.
  'dist/src/usocket.js', 'dist/src/usocket.d.ts', 'dist/src/usocket.mjs', 'dist/src/usocket.d.mts',
  'dist/src/systemd/index.js', 'dist/src/systemd/index.mjs', 'dist/src/systemd/index.d.ts', 'dist/src/systemd/index.d.mts',
]
const stray = files.filter((f) => !allowed.some((re) => re.test(f)))
const missing = required.filter((f) => !files.includes(f))
for (const f of files) console.log(`  ${f}`)
if (stray.length) throw new Error(`files that do not belong in the package: ${stray.join(', ')}`)
if (missing.length) throw new Error(`files missing from the package: ${missing.join(', ')}`)
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'))
for (const field of ['dependencies', 'bundleDependencies', 'bundledDependencies']) {
  if (pkg[field] && Object.keys(pkg[field]).length) throw new Error(`package.json has ${field}: fdpass has no runtime dependencies`)
}
// The one peer: @types/node, for TypeScript users, optional (npm never installs it for them).
const peers = JSON.stringify({ deps: pkg.peerDependencies, meta: pkg.peerDependenciesMeta })
if (peers !== JSON.stringify({ deps: { '@types/node': '>= 20' }, meta: { '@types/node': { optional: true } } })) {
  throw new Error(`package.json's peerDependencies should be only an optional @types/node: ${peers}`)
}
for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) {
  if (pkg.scripts?.[script]) throw new Error(`package.json has an install-time script: ${script}`)
}
console.log(`${files.length} files, all expected; no runtime dependencies, no install scripts`)
EOF

step "platform packages: one per napi target, named as the loader requires them"
node <<'EOF'
const fs = require('node:fs')
const main = JSON.parse(fs.readFileSync('package.json', 'utf8'))
const loader = fs.readFileSync('binding.js', 'utf8')
const expected = {
  'x86_64-unknown-linux-gnu': ['linux-x64-gnu', 'linux', 'x64', 'glibc'],
  'aarch64-unknown-linux-gnu': ['linux-arm64-gnu', 'linux', 'arm64', 'glibc'],
  'x86_64-unknown-linux-musl': ['linux-x64-musl', 'linux', 'x64', 'musl'],
  'aarch64-unknown-linux-musl': ['linux-arm64-musl', 'linux', 'arm64', 'musl'],
  'x86_64-apple-darwin': ['darwin-x64', 'darwin', 'x64', undefined],
  'aarch64-apple-darwin': ['darwin-arm64', 'darwin', 'arm64', undefined],
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
if (!same([...main.napi.targets].sort(), Object.keys(expected).sort())) throw new Error(`napi.targets: ${main.napi.targets}`)
if (!same(fs.readdirSync('npm').sort(), Object.values(expected).map((e) => e[0]).sort())) throw new Error(`npm/ holds ${fs.readdirSync('npm')}`)
for (const [triple, [dir, os, cpu, libc]] of Object.entries(expected)) {
  const pkg = JSON.parse(fs.readFileSync(`npm/${dir}/package.json`, 'utf8'))
  const binary = `fdpass.${dir}.node`
  const problems = []
  if (pkg.name !== `fdpass-${dir}`) problems.push(`name ${pkg.name}`)
  if (pkg.version !== main.version) problems.push(`version ${pkg.version}, fdpass is ${main.version}`)
  if (!same(pkg.os, [os]) || !same(pkg.cpu, [cpu])) problems.push(`os ${pkg.os} cpu ${pkg.cpu}`)
  if (!same(pkg.libc, libc && [libc])) problems.push(`libc ${pkg.libc}`)
  if (pkg.main !== binary || !same(pkg.files, [binary])) problems.push(`main ${pkg.main} files ${pkg.files}`)
  if (!same(pkg.engines, main.engines) || !same(pkg.repository, main.repository)) problems.push('engines or repository differ from fdpass')
  if (!loader.includes(`require('${pkg.name}')`)) problems.push(`binding.js never requires ${pkg.name}`)
  if (problems.length) throw new Error(`npm/${dir} (${triple}): ${problems.join('; ')}`)
  console.log(`  ${pkg.name}@${pkg.version}: os ${os}, cpu ${cpu}${libc ? `, libc ${libc}` : ''}`)
}
if (main.optionalDependencies && Object.keys(main.optionalDependencies).length) {
  throw new Error('optionalDependencies are written by napi prepublish at release time, not kept in the repository')
}
EOF

step "pack the main package and fdpass-$key"
main_tgz=$(npm pack --ignore-scripts --pack-destination "$work/tarballs" 2>/dev/null | tail -n 1)
cp -r "npm/$key" "$work/platform"
cp "$binary" "$work/platform/"
plat_tgz=$(cd "$work/platform" && npm pack --ignore-scripts --pack-destination "$work/tarballs" 2>/dev/null | tail -n 1)
main_tgz="$work/tarballs/$main_tgz"
plat_tgz="$work/tarballs/$plat_tgz"
plat_files=$(tar -tzf "$plat_tgz" | sort | tr '\n' ' ')
[ "$plat_files" = "package/README.md package/$binary package/package.json " ] ||
  fail "fdpass-$key holds unexpected files: $plat_files"
for t in "$main_tgz" "$plat_tgz"; do
  printf '%s: %s bytes packed, %s unpacked\n' "$(basename "$t")" "$(wc -c <"$t" | tr -d ' ')" \
    "$(tar -xzOf "$t" | wc -c | tr -d ' ')"
done

step "publint (strict)"
npx --no-install publint run --strict "$main_tgz"

step "arethetypeswrong"
npx --no-install attw --no-definitely-typed --no-color --format table "$main_tgz"

step "a PATH without cargo, rustc, cc or gcc"
bin="$work/bin"
mkdir -p "$bin"
for tool in node npm npx python3 sh bash env cat cp ls mkdir mktemp rm mv ln chmod dirname basename \
  head tail tr grep sed sort wc uname id; do
  found=$(command -v "$tool" || true)
  [ -n "$found" ] && ln -s "$found" "$bin/$tool"
done
for tool in cargo rustc cc gcc c++ g++ clang make; do
  if PATH="$bin" command -v "$tool" >/dev/null 2>&1; then fail "$tool is still on the restricted PATH"; fi
done
echo "restricted PATH holds: $(cd "$bin" && echo *)"
run() { env PATH="$bin" "$@"; }

step "install both tarballs into a fresh project"
app="$work/app"
mkdir -p "$app"
printf '{ "name": "fdpass-consumer", "version": "1.0.0", "private": true }\n' >"$app/package.json"
ts_version=$(node -p 'require("./node_modules/typescript/package.json").version')
types_version=$(node -p 'require("./node_modules/@types/node/package.json").version')
# Without @types/node first: fdpass declares it as an optional peer dependency,
# so npm must not install it (the TypeScript check below adds it).
(cd "$app" && run npm install --no-audit --no-fund --prefer-offline \
  "$main_tgz" "$plat_tgz" "typescript@$ts_version")
[ ! -e "$app/node_modules/@types/node" ] || fail "installing fdpass pulled in @types/node"
[ -f "$app/node_modules/fdpass-$key/$binary" ] || fail "fdpass-$key was not installed"
if ls "$app/node_modules/fdpass/"*.node >/dev/null 2>&1; then fail "the main package holds a binary"; fi

# The smoke test: the parent writes a file, reads its first 6 bytes, sends the
# open fd to a child over a socketpair (the child's fd 3); the child reads on
# from the shared offset and prints what it read. The same program runs as
# CommonJS and as an ES module.
smoke() {
  local kind=$1 load=$2 ext=$3
  cat >"$app/smoke-parent.$ext" <<EOF
$load
const { spawnSync } = require_('node:child_process')
const fs = require_('node:fs')
const path = require_('node:path')
const os = require_('node:os')
const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-smoke-')), 'data.txt')
fs.writeFileSync(file, 'parentchild:$kind')
const fd = fs.openSync(file, 'r')
const head = Buffer.alloc(6)
fs.readSync(fd, head, 0, 6, null)
const [mine, theirs] = socketPair()
sendFds(mine, 'F', [fd])
closeFds([fd, mine])
const child = spawnSync(process.execPath, [path.join(dirOf, 'smoke-child.$ext')], {
  stdio: ['ignore', 'pipe', 'inherit', theirs], encoding: 'utf8',
})
closeFds([theirs])
const want = 'got "F" and 1 fd, read: child:$kind'
if (child.status !== 0 || child.stdout.trim() !== want) {
  console.error('smoke test failed:', child.status, JSON.stringify(child.stdout))
  process.exit(1)
}
console.log('$kind: parent read ' + JSON.stringify(head.toString()) + '; child ' + child.stdout.trim())
EOF
  cat >"$app/smoke-child.$ext" <<EOF
$load
const fs = require_('node:fs')
const { data, fds } = recvFds(3)
const buf = Buffer.alloc(64)
const n = fs.readSync(fds[0], buf, 0, buf.length, null)
closeFds(fds)
console.log('got ' + JSON.stringify(data.toString()) + ' and ' + fds.length + ' fd, read: ' + buf.subarray(0, n))
EOF
  (cd "$app" && run node "smoke-parent.$ext")
}

step "smoke test from CommonJS: require('fdpass')"
smoke commonjs "const { closeFds, recvFds, sendFds, socketPair } = require('fdpass')
const require_ = require
const dirOf = __dirname
if (!require.resolve('fdpass').startsWith(require('node:path').join(__dirname, 'node_modules', 'fdpass'))) throw new Error('fdpass resolved outside the project')" cjs

step "smoke test from ESM: import { sendFds } from 'fdpass'"
smoke esm "import { closeFds, recvFds, sendFds, socketPair } from 'fdpass'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
const require_ = createRequire(import.meta.url)
const dirOf = require_('node:path').dirname(fileURLToPath(import.meta.url))" mjs

step "the fdpass/usocket entry loads from require and import"
(cd "$app" && run node -e "if (typeof require('fdpass/usocket').USocket !== 'function') process.exit(1)")
(cd "$app" && run node --input-type=module -e "import { USocket, UServer } from 'fdpass/usocket'; if (typeof USocket !== 'function' || typeof UServer !== 'function') process.exit(1)")
step "fdpass/systemd from CommonJS and ESM: the same names, and no service manager here"
(cd "$app" && env -u NOTIFY_SOCKET node -e "
const s = require('fdpass/systemd')
if (typeof s.storeFds !== 'function' || s.notify('READY=1') !== false) throw new Error('require(fdpass/systemd)')
import('fdpass/systemd').then((m) => {
  const names = (o) => Object.keys(o).filter((k) => k !== 'default').sort().join()
  if (names(m) !== names(s)) throw new Error('import and require of fdpass/systemd differ: ' + names(m) + ' / ' + names(s))
  console.log('fdpass/systemd: ' + names(s))
})")

step "type-check a TypeScript consumer (module node16, strict) against the installed types"
mkdir -p "$app/ts"
cat >"$app/ts/tsconfig.json" <<'EOF'
{
  "compilerOptions": {
    "module": "node16",
    "moduleResolution": "node16",
    "target": "ES2022",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "types": ["node"]
  },
  "include": ["*.mts", "*.cts"]
}
EOF
cat >"$app/ts/use-import.mts" <<'EOF'
import { closeFds, fdKind, MAX_FDS_PER_MESSAGE, recvFds, sendFds, socketPair } from 'fdpass'
import type { FdKind, FdpassError, RecvFdsResult, SocketType } from 'fdpass'
import { USocket } from 'fdpass/usocket'
import { listenFdsByName, storeFds } from 'fdpass/systemd'
const byName: Map<string, number[]> = listenFdsByName()
const stored: boolean = storeFds('state', [0])

const type: SocketType = 'seqpacket'
const [a, b]: [number, number] = socketPair(type)
const sent: number = sendFds(a, new Uint8Array([1]), [a])
const got: RecvFdsResult = recvFds(b, { maxBytes: 16, maxFds: MAX_FDS_PER_MESSAGE })
const data: Buffer = got.data
const kinds: FdKind[] = got.fds.map((fd) => fdKind(fd))
closeFds([a, b, ...got.fds])
const code: string = ({} as FdpassError).code
// @ts-expect-error fds are numbers
sendFds(a, 'x', ['0'])
// @ts-expect-error no such socket type
socketPair('raw')
const usocketRead: { data: Buffer | null; fds: number[] } | null = new USocket({ fd: 0 }).read(4, null)
export { byName, code, data, kinds, sent, stored, usocketRead }
EOF
cat >"$app/ts/use-require.cts" <<'EOF'
import fdpass = require('fdpass')
import type { RecvFdsOptions } from 'fdpass'
import usocket = require('fdpass/usocket')

const server: usocket.UServer = new usocket.UServer()
void server
import systemd = require('fdpass/systemd')
const activated: number[] = systemd.listenFds()

const options: RecvFdsOptions = { maxFds: 1 }
const [a, b] = fdpass.socketPair()
fdpass.sendFds(a, 'hello', [])
const { data, fds } = fdpass.recvFds(b, options)
const text: string = data.toString()
fdpass.closeFds([a, b, ...fds])
// @ts-expect-error recvFds takes an options object, not a number
fdpass.recvFds(b, 1)
export = text
EOF
# README says TypeScript users need @types/node: without it the same consumer
# fails, and only on what Node's types would declare.
sed 's/"types": \["node"\]/"types": []/' "$app/ts/tsconfig.json" >"$app/ts/tsconfig.no-node.json"
if (cd "$app/ts" && run node ../node_modules/typescript/bin/tsc -p tsconfig.no-node.json >"$work/no-node.txt"); then
  fail "the consumer type-checks without @types/node: README's requirement is out of date"
fi
grep -q "node:\|Buffer\|NodeJS\|require" "$work/no-node.txt" ||
  fail "without @types/node tsc failed for another reason: $(cat "$work/no-node.txt")"
echo "without @types/node: tsc fails on Node's own types ($(grep -c 'error TS' "$work/no-node.txt") errors), as README says"

(cd "$app" && run npm install --no-audit --no-fund --prefer-offline --no-save "@types/node@$types_version")
(cd "$app/ts" && run node ../node_modules/typescript/bin/tsc -p tsconfig.json)
echo "with @types/node: use-import.mts and use-require.cts type-check against the installed fdpass"

step "packaging test passed"
