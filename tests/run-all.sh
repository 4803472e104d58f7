#!/usr/bin/env bash
# Every test: Rust unit, property and integration tests (which build the trigger
# components), then the end-to-end tests that drive the real server with boto3.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
python3 -m pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
npm ci --prefix tests/js --no-audit --no-fund
cargo test --workspace --locked
python3 -m pytest -q tests/e2e
