#!/usr/bin/env bash
# Runs the ava suite on Node 22 and 24, with the addon as built (Node-API: one
# binary serves every Node version). The machine's own Node (20) is `npm test`.
#
#   scripts/node-versions.sh            # after `npm run build`
#
# The Node binaries come from the npm registry: `node-<os>-<arch>` is the
# package that the `node` package installs from its preinstall script; taking
# it directly needs no install script. ava 7 supports Node ^20.19, ^22.20,
# ^24.12 and >= 25 (its `engines`), so the pinned versions are at least those.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSIONS=(22.23.3 24.21.0)
CACHE="${FDPASS_NODE_CACHE:-${TMPDIR:-/tmp}/fdpass-node-versions}"
platform=$(node -p 'process.platform + "-" + process.arch')

run_suite() {
  local node_bin=$1
  local got
  got=$("$node_bin" --version)
  printf '\n--- ava on Node %s (%s)\n' "$got" "$node_bin"
  # ava forks its workers with its own process.execPath and the tests spawn
  # children with process.execPath, so everything runs on this binary; PATH
  # covers anything started as plain `node`.
  PATH="$(dirname "$node_bin"):$PATH" "$node_bin" node_modules/ava/entrypoints/cli.mjs
}

for version in "${VERSIONS[@]}"; do
  prefix="$CACHE/$version"
  node_bin="$prefix/node_modules/node-$platform/bin/node"
  if [ ! -x "$node_bin" ]; then
    rm -rf "$prefix"
    mkdir -p "$prefix"
    npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$prefix" "node-$platform@$version" >/dev/null
  fi
  got=$("$node_bin" --version)
  [ "$got" = "v$version" ] || { echo "expected Node v$version, got $got from $node_bin" >&2; exit 1; }
  run_suite "$node_bin"
done
