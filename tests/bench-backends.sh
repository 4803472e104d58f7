#!/usr/bin/env bash
# The serve load test (loadgen) on SQLite, on one PostgreSQL node and on two nodes of one
# PostgreSQL database, in one run on one machine; PostgreSQL is a throwaway cluster with
# its default settings (fsync and synchronous_commit on, as SQLite's synchronous=FULL).
# Build first: cargo build --release -p synctrig-wasm -p synctrig-tests --bin synctrig-wasm --bin loadgen
# Usage: tests/bench-backends.sh [REQUESTS CONCURRENCY SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
pg_dir=$(mktemp -d /tmp/synctrig-bench-pg.XXXXXX)
trap 'tests/pg-cluster.sh stop "$pg_dir" || true; rm -rf "$pg_dir"' EXIT
url=$(tests/pg-cluster.sh start "$pg_dir")
fresh() {
  local name="bench_$(date +%s%N)"
  psql "$url" -qc "CREATE DATABASE $name" >&2
  echo "${url%/*}/$name"
}
echo "== SQLite"
./target/release/loadgen "$@"
echo "== PostgreSQL, one node"
SYNCTRIG_DATABASE_URL=$(fresh) ./target/release/loadgen "$@"
echo "== PostgreSQL, two nodes"
SYNCTRIG_DATABASE_URL=$(fresh) LOADGEN_NODES=2 ./target/release/loadgen "$@"
