#!/usr/bin/env bash
# Builds the JavaScript engine component from source into js-engine/engine.wasm, the file
# the runtime embeds (committed, so that building synctrig-wasm needs no C toolchain).
#
#   js-engine/build.sh          rebuild engine.wasm from js-engine/src (after changing it)
#   js-engine/build.sh --check  lint the engine (clippy, -D warnings), rebuild it and fail
#                               unless it is the same bytes as the committed engine.wasm
#                               (CI runs this)
#
# Needs the wasm32-wasip2 target and Debian's clang-19, llvm-19 and wasi-libc
# (tests/install-system-packages.sh installs them). The build is reproducible: paths are
# remapped, so the bytes do not depend on where the checkout or the cargo home is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
check=false
[ "${1:-}" = "--check" ] && check=true

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cc=$(command -v clang-19 || command -v clang || true)
ar=$(command -v llvm-ar-19 || command -v llvm-ar || true)
include=${SYNCTRIG_WASI_INCLUDE:-/usr/include/wasm32-wasi}
if [ -z "$cc" ] || [ -z "$ar" ] || [ ! -f "$include/stdio.h" ]; then
  echo "js-engine/build.sh needs clang-19, llvm-19 and wasi-libc (tests/install-system-packages.sh)" >&2
  exit 1
fi
cargo_home=${CARGO_HOME:-$HOME/.cargo}
target_dir="$root/target/js-engine"
# The stack size is the engine's own setting (.cargo/config.toml); RUSTFLAGS replaces that
# file's flags, so it is repeated here with the path remapping.
export RUSTFLAGS="-C link-arg=-zstack-size=1048576 --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$here=/js-engine --remap-path-prefix=$target_dir=/target"
export RQUICKJS_SYS_NO_WASI_SDK=1 CC_wasm32_wasip2="$cc" AR_wasm32_wasip2="$ar"
# -nostdlibinc: without it clang falls back to the host's glibc headers. (QuickJS at -O2
# instead of the profile's -Os: 10% less fuel, a 34% larger component, slower deploys and
# cache loads; measured, not worth it.)
# The C sources are copied under the target dir (rquickjs-sys's OUT_DIR): mapped too.
export CFLAGS_wasm32_wasip2="-nostdlibinc -isystem $include -ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$here=/js-engine -ffile-prefix-map=$target_dir=/target"
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CARGO_ENCODED_RUSTFLAGS
# rquickjs-sys as published, with patches/ applied (the engine's Cargo.toml takes it from
# there): the crate file is verified against its crates.io checksum first.
sys_version=0.14.0
sys_checksum=cee271d0eeba64f0915b846cb7ae02e16faf3dfdffdca91731101d9d30fe3423
sys_dir="$here/.patched/rquickjs-sys"
stamp="$sys_dir/.synctrig-$sys_version-$(cat "$here"/patches/*.patch | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  crate=$(ls "$cargo_home"/registry/cache/*/rquickjs-sys-$sys_version.crate 2>/dev/null | head -1 || true)
  if [ -z "$crate" ]; then
    fetch="$target_dir/fetch-rquickjs-sys"
    mkdir -p "$fetch/src"
    printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2024"\n[dependencies]\nrquickjs-sys = "=%s"\n[workspace]\n' "$sys_version" >"$fetch/Cargo.toml"
    : >"$fetch/src/lib.rs"
    cargo fetch --manifest-path "$fetch/Cargo.toml" >/dev/null
    crate=$(ls "$cargo_home"/registry/cache/*/rquickjs-sys-$sys_version.crate | head -1)
  fi
  echo "$sys_checksum  $crate" | sha256sum --check --quiet
  rm -rf "$sys_dir" && mkdir -p "$sys_dir"
  tar -xzf "$crate" -C "$sys_dir" --strip-components=1
  for p in "$here"/patches/*.patch; do patch --quiet --directory="$sys_dir" -p1 <"$p"; done
  # rquickjs-sys's build script does not watch the C sources: without this, changed patches
  # would leave the last build's QuickJS in place.
  (cd "$here" && cargo clean --quiet --release --target wasm32-wasip2 --target-dir "$target_dir" -p rquickjs-sys)
  touch "$stamp"
fi
build=(--release --locked --target wasm32-wasip2 --target-dir "$target_dir")
# Clippy with the build's own profile and flags, so QuickJS's C is compiled once for both.
$check && (cd "$here" && cargo clippy "${build[@]}" -- -D warnings)
(cd "$here" && cargo build "${build[@]}")
built="$target_dir/wasm32-wasip2/release/synctrig_js_engine.wasm"
if $check; then
  if cmp -s "$built" "$here/engine.wasm"; then
    echo "js-engine/engine.wasm is what js-engine/src builds ($(wc -c <"$built") bytes, sha256 $(sha256sum "$built" | cut -c1-16))"
  else
    echo "js-engine/engine.wasm is not what js-engine/src builds: run js-engine/build.sh and commit engine.wasm" >&2
    exit 1
  fi
else
  cp "$built" "$here/engine.wasm"
  echo "wrote js-engine/engine.wasm ($(wc -c <"$here/engine.wasm") bytes)"
fi
