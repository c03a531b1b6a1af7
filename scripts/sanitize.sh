#!/usr/bin/env bash
# Sanitizer checks of the native code, Linux only:
#
# 1. Miri runs the core's control-message and frame-decoder unit tests
#    (crates/fdpass: cmsg, frame), checking the unsafe reads of control data
#    for undefined behaviour.
# 2. The Node addon, built with AddressSanitizer, is driven by the whole ava
#    suite with LeakSanitizer on, then by a check that sockets dropped without
#    close() and garbage-collected free everything. A finding is any
#    AddressSanitizer error in any process, or any leak whose allocation stack
#    has a frame of fdpass's own code (crates/fdpass, crates/napi-plumbing, crates/fdpass-node)
#    in a process that tore its Node environment down.
#    Leaks whose stacks hold only Node, V8, libuv, napi-rs or Python frames
#    are not ours (Node leaves much allocated at exit on purpose) and are only
#    counted. A suppression file would not do: every stack of ours also has
#    Node frames below it.
#
# Needs the nightly toolchain (miri and rust-src are added when missing), gcc's
# libasan, and `npm run build` done (dist/ and binding.js). Non-zero exit on any
# finding; the sanitizer logs are then kept and their folder printed.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(uname -s)" = Linux ] || { echo "sanitize.sh runs on Linux only" >&2; exit 1; }
if [ ! -f dist/index.js ] || [ ! -f binding.js ]; then
  echo "run npm run build first" >&2
  exit 1
fi

step() { printf '\n--- %s\n' "$*"; }

cargo +nightly --version >/dev/null 2>&1 ||
  rustup toolchain install nightly --profile minimal
installed=$(rustup component list --toolchain nightly --installed)
for component in miri rust-src; do
  grep -q "^$component" <<<"$installed" || rustup component add --toolchain nightly "$component"
done

step "miri: cargo +nightly miri test -p fdpass --lib -- cmsg frame"
cargo +nightly miri test -p fdpass --lib -- cmsg frame

step "AddressSanitizer build of the addon"
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
asan_dir="$PWD/target/asan"
RUSTFLAGS="-Zsanitizer=address" cargo +nightly build -p fdpass-node \
  --target "$host" --target-dir "$asan_dir"
addon="$asan_dir/fdpass.asan.node"
cp "$asan_dir/$host/debug/libfdpass_node.so" "$addon"
libasan=$(gcc -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "gcc's libasan.so not found (Debian: libasan8)" >&2; exit 1; }

logs=$(mktemp -d "${TMPDIR:-/tmp}/fdpass-asan-logs.XXXXXX")
# Some tests run children as nobody: they write their logs here too.
chmod 1777 "$logs"
# exitcode=0: LeakSanitizer must not change the exit status of processes that
# are not ours (Node and Python leak at exit); findings are read from the logs.
# handle_abort=1: an abort (a Rust runtime check, e.g. an owned fd found
# already closed) leaves its stack in the logs too.
asan_env=(
  "LD_PRELOAD=$libasan"
  "ASAN_OPTIONS=detect_leaks=1:exitcode=0:handle_abort=1:log_path=$logs/asan"
  "NAPI_RS_NATIVE_LIBRARY_PATH=$addon"
)

# Tests that bound RSS growth measure the allocator, which AddressSanitizer
# replaces: its quarantine holds up to 256 MB of freed memory and its stack
# depot grows with the stacks of V8's generated code. Those with RSS in their
# title run in a second pass with a quarantine of 8 MB, which keeps them within
# their bounds; the soak (5 MB over 50,000 messages) grows by about 5 MB under
# AddressSanitizer even without a quarantine, so it runs in the normal suite
# only. Its paths (stream messages of one fd each) are those of the others.
step "ava suite on the AddressSanitizer build (LeakSanitizer on)"
# A failing test is a finding too, reported after the sanitizer logs.
failed=0
env "${asan_env[@]}" node node_modules/ava/entrypoints/cli.mjs --match '!*RSS*' --match '!soak:*' ||
  failed=$((failed + 1))
step "ava: the RSS-bounded tests, with an 8 MB quarantine"
env "${asan_env[@]}" "ASAN_OPTIONS=detect_leaks=1:exitcode=0:handle_abort=1:log_path=$logs/asan:quarantine_size_mb=8" \
  node node_modules/ava/entrypoints/cli.mjs --match '*RSS*' || failed=$((failed + 1))

step "sockets dropped without close() are freed by their finalizers"
env "${asan_env[@]}" node --expose-gc -e '
const { FdSocket } = require(process.cwd() + "/dist/index.js")
;(async () => {
  for (let i = 0; i < 100; i++) FdSocket.pair() // never closed
  for (let i = 0; i < 5; i++) {
    globalThis.gc()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  console.log("200 sockets dropped without close() and collected")
})()' || failed=$((failed + 1))

step "sanitizer reports"
shopt -s nullglob
reports=("$logs"/asan.*)
# A process that ends with process.exit() never tears V8 down: its heap pages
# are reported leaked, and with them every native object JavaScript still
# held, ours included. Leaks are only meaningful in the processes that tore
# their environment down (which runs the cleanup hooks and finalizers).
torn_down=()
abrupt=0
for f in "${reports[@]}"; do
  if grep -q 'MemoryAllocator::AllocatePage' "$f"; then
    abrupt=$((abrupt + 1))
  else
    torn_down+=("$f")
  fi
done
findings=0
errors=$(grep -l 'ERROR: AddressSanitizer' "${reports[@]}" /dev/null || true)
if [ -n "$errors" ]; then
  for f in $errors; do
    printf '=== %s\n' "$f"
    cat "$f"
  done
  findings=$((findings + $(wc -l <<<"$errors")))
fi
ours=$(awk 'BEGIN { RS = "" }
  /(Direct|Indirect) leak of/ && /crates\/(fdpass|fdpass-node|napi-plumbing)\/src\// { n++; print "=== " FILENAME; print; print "" }
  END { exit n == 0 }' "${torn_down[@]}" /dev/null) || true
if [ -n "$ours" ]; then
  printf '%s\n' "$ours"
  findings=$((findings + $(grep -c '^=== ' <<<"$ours")))
  echo "leaks by the first frame of fdpass code in their stacks (count, frame):"
  awk 'BEGIN { RS = "" } /crates\/(fdpass|fdpass-node|napi-plumbing)\/src\// {
      n = split($0, line, "\n")
      for (i = 1; i <= n; i++) if (line[i] ~ /crates\/(fdpass|fdpass-node|napi-plumbing)\/src\//) {
        sub(/^ *#[0-9]+ 0x[0-9a-f]+ in /, "", line[i]); print line[i]; break
      }
    }' <<<"$ours" | sort | uniq -c | sort -rn
fi
others=$(cat "${reports[@]}" /dev/null | grep -cE '^(Direct|Indirect) leak of' || true)
echo "${#reports[@]} processes reported at exit ($abrupt without tearing V8 down, their leaks not counted); $others leak stacks in all, of which $(grep -c '^=== ' <<<"$ours" || true) in fdpass code in the others; $(wc -w <<<"$errors") processes with memory errors"
if [ "$findings" -ne 0 ] || [ "$failed" -ne 0 ]; then
  echo "sanitizers: $findings findings, $failed failed test runs; logs kept in $logs" >&2
  exit 1
fi
rm -rf "$logs"
echo "sanitizers: no findings (miri, AddressSanitizer, LeakSanitizer)"
