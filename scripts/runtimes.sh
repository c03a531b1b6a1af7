#!/usr/bin/env bash
# Runs the runtime smoke suite (__test__/runtimes/smoke.cjs) on Node, Bun and
# Deno, with the addon as built, and prints one pass/fail line per runtime.
#
#   scripts/runtimes.sh            # after `npm run build`
#
# Bun and Deno come from the npm registry (`@oven/bun-<os>-<arch>` and
# `deno`, whose binary is in the `@deno/<os>-<arch>-<libc>` package it
# depends on), installed without install scripts into a cache outside the
# repository. Linux x64 only: the packages named here are that platform's.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.5
DENO_VERSION=2.9.6
CACHE="${FDPASS_RUNTIMES_CACHE:-${TMPDIR:-/tmp}/fdpass-runtimes}"
SUITE=__test__/runtimes/smoke.cjs

if [ "$(node -p 'process.platform + "-" + process.arch')" != linux-x64 ]; then
  echo "runtimes: Linux x64 only (the Bun and Deno packages named here are that platform's)" >&2
  exit 1
fi

# Installs `package@version` into its own prefix in the cache, once.
install() {
  local spec=$1 prefix="$CACHE/$1"
  if [ ! -f "$prefix/.complete" ]; then
    rm -rf "$prefix"
    mkdir -p "$prefix"
    npm install --no-save --no-audit --no-fund --no-package-lock --ignore-scripts --prefix "$prefix" "$spec" >/dev/null
    touch "$prefix/.complete"
  fi
  printf '%s\n' "$prefix/node_modules"
}

bun_bin="$(install "@oven/bun-linux-x64@$BUN_VERSION")/@oven/bun-linux-x64/bin/bun"
deno_bin="$(install "deno@$DENO_VERSION")/@deno/linux-x64-glibc/deno"

failed=()
results=()
run() {
  local name=$1
  shift
  printf '\n--- %s: %s\n' "$name" "$*"
  local out status=0
  out=$("$@" "$SUITE" 2>&1) || status=$?
  printf '%s\n' "$out"
  local summary
  summary=$(tail -n 1 <<<"$out")
  if [ "$status" -eq 0 ] && grep -qE '^[a-z]+ [0-9.]+: [0-9]+ passed, 0 failed$' <<<"$summary"; then
    results+=("PASS $name ($summary)")
  else
    results+=("FAIL $name (exit $status: $summary)")
    failed+=("$name")
  fi
}

run node node
run bun "$bun_bin"
run deno "$deno_bin" run --allow-all

printf '\n'
printf '%s\n' "${results[@]}"
[ ${#failed[@]} -eq 0 ] || { echo "runtimes: failed on ${failed[*]}" >&2; exit 1; }
