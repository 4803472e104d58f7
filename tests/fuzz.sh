#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets; harnesses in the crates' fuzzing modules).
#
#   tests/fuzz.sh [SECONDS]           each target for SECONDS (default 20), coverage-guided
#   tests/fuzz.sh --stable [SECONDS]  the same harnesses on stable, as unit tests: the corpus
#                                     replayed, then SECONDS × 500 seeded random inputs each
#
# With the nightly toolchain (rustup's, when the machine has it) it runs libFuzzer through
# cargo-fuzz, installing cargo-fuzz from crates.io if missing; it starts from the committed
# corpus (fuzz/corpus/<target>, read only) and keeps what it finds in a temporary directory.
# A crash stops the run with the failing input under fuzz/artifacts/<target>/: add it to
# the corpus, and the unit tests replay it from then on. Without nightly, or with
# --stable, it runs the stable way. CI runs --stable: it reuses the test build, where
# libFuzzer needs a second, instrumented build of everything (minutes on 2 cores).
#
# Prints, per target, how many inputs it executed.
set -euo pipefail
cd "$(dirname "$0")/.."
stable=false
[ "${1:-}" = "--stable" ] && { stable=true; shift; }
seconds=${1:-20}
targets=(event_codec merge sigv4 api_request lift)

if $stable || ! rustup toolchain list | grep -q '^nightly'; then
  $stable || echo "no nightly toolchain: replaying the corpus and seeded random inputs on stable instead of libFuzzer"
  # The whole workspace, as `cargo test --workspace` builds it (the same features, so
  # nothing is rebuilt); only the fuzzing tests run.
  SYNCTRIG_FUZZ_RANDOM=$((seconds * 500)) cargo test --workspace --lib --locked fuzzing -- --nocapture
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
# No sanitizer: the code under test is safe Rust (and wasmtime's); coverage instrumentation
# only, in the dev profile, keeps the build short (a long run is better built with -O,
# see the README).
build=(--dev --sanitizer none --target-dir ../target/fuzz)
(cd fuzz && cargo +nightly fuzz build "${build[@]}")
echo "fuzz targets built after ${SECONDS}s"
found=$(mktemp -d /tmp/synctrig-fuzz.XXXXXX)
trap 'rm -rf "$found"' EXIT
summary=()
for target in "${targets[@]}"; do
  mkdir -p "$found/$target"
  log="$found/$target.log"
  if ! (cd fuzz && cargo +nightly fuzz run "${build[@]}" "$target" "$found/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096) >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed: its input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  summary+=("$target: $runs inputs in ${seconds}s")
done
printf '%s\n' "${summary[@]}"
echo "fuzzing done after ${SECONDS}s"
