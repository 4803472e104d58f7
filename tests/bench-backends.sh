#!/usr/bin/env bash
# The serve load test (loadgen) on SQLite, on one PostgreSQL node and on two nodes of one
# PostgreSQL database, in one run on one machine; PostgreSQL is a throwaway cluster with
# its default settings (fsync and synchronous_commit on, as SQLite's synchronous=FULL).
# Then the quiet tenant alone on SQLite and on one PostgreSQL node at each concurrency of
# BENCH_SWEEP (default "8 16 24 32"; empty: none), to compare throughput at one p99 bound.
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
requests=${1:-20000}
seconds=${3:-20}
for c in ${BENCH_SWEEP-8 16 24 32}; do
  echo "== concurrency $c"
  echo -n "SQLite:     "
  LOADGEN_PHASES=alone ./target/release/loadgen "$requests" "$c" "$seconds" | grep "alone"
  echo -n "PostgreSQL: "
  SYNCTRIG_DATABASE_URL=$(fresh) LOADGEN_PHASES=alone ./target/release/loadgen "$requests" "$c" "$seconds" | grep "alone"
done
