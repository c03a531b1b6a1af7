#!/usr/bin/env bash
# Compares the benchmark of two commits in one run: builds the base commit's
# addon in a temporary git worktree, then runs the project's own benchmark
# (bench/run.js, quick mode by default) for the base and for the current
# tree, alternating, so that load on the machine hits both alike. Each
# bench run measures the C reference beside fdpass, so every figure is a
# ratio to C measured in the same run; the table gives, per workload and
# implementation, the median ratio over the rounds for base and head.
#
#   scripts/bench-compare.sh [base-commit]      # default base: b552f1a
#   ROUNDS=7 scripts/bench-compare.sh           # rounds per tree (default 5)
#   INSTRUCTIONS=1 ROUNDS=0 scripts/bench-compare.sh
#       user-space instructions per W1 stream round trip of each fdpass API
#       (callgrind, as the full bench counts them: immune to the machine's
#       load), instead of or beside the timed rounds
#
# The current tree is built with `npm run build`; the base worktree shares
# its node_modules, and its Cargo build directory is kept under
# target/bench-base, so a second comparison against the same base rebuilds
# little. The worktree is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
base=${1:-b552f1a}
rounds=${ROUNDS:-5}
instructions=${INSTRUCTIONS:-}

base_rev=$(git rev-parse --short "$base^{commit}")
head_rev=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain --untracked-files=no | head -1)
work=$(mktemp -d "${TMPDIR:-/tmp}/fdpass-bench-base.XXXXXX")
cleanup() {
  git -C "$root" worktree remove --force "$work/tree" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "bench-compare: building base $base_rev in a temporary worktree"
git worktree add --detach --quiet "$work/tree" "$base_rev"
ln -s "$root/node_modules" "$work/tree/node_modules"
(cd "$work/tree" && CARGO_TARGET_DIR="$root/target/bench-base" npm run build --silent >"$work/base-build.log" 2>&1) || {
  tail -30 "$work/base-build.log"
  exit 1
}
echo "bench-compare: building head $head_rev${dirty:+ (with uncommitted changes)}"
npm run build --silent >"$work/head-build.log" 2>&1 || {
  tail -30 "$work/head-build.log"
  exit 1
}

for round in $(seq 1 "$rounds"); do
  for side in base head; do
    tree=$root
    [ "$side" = base ] && tree=$work/tree
    echo "bench-compare: round $round/$rounds, $side"
    (cd "$tree" && node bench/run.js --quick >"$work/$side-$round.log" 2>&1) || {
      tail -20 "$work/$side-$round.log"
      exit 1
    }
    cp "$tree/.bench-out/quick.json" "$work/$side-$round.json"
  done
done

if [ -n "$instructions" ]; then
  # (I(30000) - I(10000)) / 20000: start-up and JIT warm-up cancel out.
  # V8 compiles on background threads, so how long code runs unoptimized
  # varies from run to run (hundreds of instructions per round trip);
  # --single-threaded compiles on the main thread, and fixed seeds make
  # start-up repeat itself, so two runs of one tree agree to a few
  # instructions.
  count() { # tree runner api n
    FDPASS_BENCH_N=$4 FDBENCH_API=$3 valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
      node --single-threaded --hash-seed=1 --random-seed=1 "$1/bench/runners/$2" w1 stream 0 1 2>&1 >/dev/null |
      sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  }
  echo
  echo "User-space instructions per W1 stream round trip (callgrind; base $base_rev, head $head_rev):"
  echo
  echo "| implementation | base | head |"
  echo "|---|---|---|"
  for impl in "raw sync (SyncSocket):fdpass-raw.js:sync" "raw sync (fd numbers):fdpass-raw.js:numbers" \
    "FdSocket:fdpass-async.js:async" "FdSocket (receiveMany):fdpass-async.js:many"; do
    IFS=: read -r name runner api <<<"$impl"
    row="| $name |"
    for tree in "$work/tree" "$root"; do
      a=$(count "$tree" "$runner" "$api" 10000)
      b=$(count "$tree" "$runner" "$api" 30000)
      row="$row $(((b - a) / 20000)) |"
    done
    echo "$row"
  done
fi
[ "$rounds" -gt 0 ] || exit 0

node - "$work" "$rounds" "$base_rev" "$head_rev" <<'JS'
const fs = require('node:fs')
const path = require('node:path')
const [dir, rounds, baseRev, headRev] = process.argv.slice(2)
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const load = (side) =>
  Array.from({ length: Number(rounds) }, (_, i) => JSON.parse(fs.readFileSync(path.join(dir, `${side}-${i + 1}.json`), 'utf8')))
const sides = { base: load('base'), head: load('head') }
const first = sides.head[0]
const ratios = (side, wl, impl) =>
  sides[side].map((r) => r.results[wl]?.[impl]).filter((row) => row && row.status === 'ok' && row.ratio !== undefined).map((row) => row.ratio)
console.log(`\nRatio to C, median of ${rounds} alternating runs each (base ${baseRev}, head ${headRev}):\n`)
console.log('| workload | implementation | base | head | change |')
console.log('|---|---|---|---|---|')
let dropped = 0
for (const wl of first.workloads) {
  for (const impl of first.implementations) {
    if (impl.id === 'c') continue
    const b = median(ratios('base', wl.id, impl.id))
    const h = median(ratios('head', wl.id, impl.id))
    if (Number.isNaN(b) && Number.isNaN(h)) continue
    // A workload or implementation only one side has (added or removed) has no change to show.
    const ratio = (x) => (Number.isNaN(x) ? 'not in this tree' : `${x.toFixed(2)}×`)
    const change = (h / b - 1) * 100
    if (change < 0) dropped++
    const shown = Number.isNaN(change) ? '–' : `${change >= 0 ? '+' : ''}${change.toFixed(0)}%`
    console.log(`| ${wl.label} | ${impl.name} | ${ratio(b)} | ${ratio(h)} | ${shown} |`)
  }
}
console.log(`\n${dropped} ratio(s) lower at head than at base (noise on a shared machine is a few percent per run).`)
JS
