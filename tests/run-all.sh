#!/usr/bin/env bash
# Every test: Rust unit, property and integration tests (which build the trigger
# components and the JavaScript engine), then the end-to-end tests that drive the real
# server with boto3, the AWS CLI and the JavaScript clients.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/install-system-packages.sh
rustup target add wasm32-wasip2
python3 -m pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
npm ci --prefix tests/js --no-audit --no-fund
# The tests need the JavaScript engine: a missing toolchain is an error, not a skip.
export SYNCTRIG_REQUIRE_JS_ENGINE=1
cargo test --workspace --locked
python3 -m pytest -q tests/e2e
