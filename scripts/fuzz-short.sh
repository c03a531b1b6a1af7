#!/usr/bin/env bash
# Fuzzes the core's control-message parser and stream frame decoder with
# cargo-fuzz (libFuzzer, AddressSanitizer, debug assertions): the targets in
# crates/fdpass/fuzz, each seeded with the inputs saved in its regressions/
# folder (past findings), then run for FUZZ_SECONDS seconds (default 12).
# FUZZ_RUNS=N runs each target for N executions instead, for long runs, e.g.
#   FUZZ_RUNS=1000000 bash scripts/fuzz-short.sh
# Non-zero exit on any finding; the crashing input is left in
# crates/fdpass/fuzz/artifacts/<target>/.
# Needs the nightly toolchain; installs cargo-fuzz from crates.io into
# ${TMPDIR:-/tmp}/fdpass-tools when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_fuzz_version=0.13.2
tools="${TMPDIR:-/tmp}/fdpass-tools"
export PATH="$tools/bin:$PATH"

cargo +nightly --version >/dev/null 2>&1 ||
  rustup toolchain install nightly --profile minimal
if ! cargo fuzz --version 2>/dev/null | grep -qF "cargo-fuzz $cargo_fuzz_version"; then
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version" --root "$tools"
fi

cd crates/fdpass/fuzz
targets=(control_messages frame_decoder)
if [ -n "${FUZZ_RUNS:-}" ]; then
  limit=("-runs=$FUZZ_RUNS")
else
  limit=("-max_total_time=${FUZZ_SECONDS:-12}")
fi

cargo +nightly fuzz build
for target in "${targets[@]}"; do
  printf -- '--- fuzz target %s (%s)\n' "$target" "${limit[*]}"
  mkdir -p "corpus/$target" "regressions/$target"
  log="$(mktemp)"
  status=0
  cargo +nightly fuzz run "$target" "corpus/$target" "regressions/$target" -- \
    "${limit[@]}" -print_final_stats=1 >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 80 "$log"
    rm -f "$log"
    echo "fuzz target $target: FINDING (exit $status); input saved under crates/fdpass/fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  grep -E '^#[0-9]+' "$log" | tail -n 1 || true
  rm -f "$log"
  echo "fuzz target $target: no finding"
done
