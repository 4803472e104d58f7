#!/usr/bin/env bash
# The data-growth benchmark: stores of 0, 10k and 100k identities (2 datasets of 20 records
# each: up to 4M records), made in seconds through the export stream and `admin import`, on
# SQLite and PostgreSQL; for each: start-up time, disk use (and its ratio to the export stream
# that holds the same data), the usage calls' latency, then
# loadgen's sync load (syncs/s, p50, p99, server CPU per sync). Each round goes over the
# sizes in the opposite order of the last (machine noise cancels), on a fresh copy of the
# imported store.
#
#   cargo build --release -p synctrig-wasm -p synctrig-tests --bin synctrig-wasm --bin loadgen
#   tests/bench-growth.sh                       # SIZES="0 10000 100000" BACKENDS="sqlite postgres" ROUNDS=2
#
# PostgreSQL: SYNCTRIG_TEST_DATABASE_URL (a server where it may create databases), or a
# throwaway cluster it starts. Needs python3 with boto3 (tests/e2e/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
BIN=${BIN:-$root/target/release/synctrig-wasm}
LOADGEN=${LOADGEN:-$root/target/release/loadgen}
SIZES=${SIZES:-0 10000 100000}
BACKENDS=${BACKENDS:-sqlite postgres}
ROUNDS=${ROUNDS:-2}
LOAD=${LOAD:-20000 32 10}
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || { echo "build first: cargo build --release -p synctrig-wasm -p synctrig-tests --bin synctrig-wasm --bin loadgen" >&2; exit 1; }
work=$(mktemp -d /tmp/synctrig-growth.XXXXXX)
export SYNCTRIG_ROOT_ACCESS_KEY_ID=AKIAGROWTHROOT SYNCTRIG_ROOT_SECRET_ACCESS_KEY=growth-root-secret RUST_LOG=error
pg_dir=""
cleanup() {
  [ -n "$pg_dir" ] && tests/pg-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work" "$pg_dir"
}
trap cleanup EXIT
if [[ " $BACKENDS " == *" postgres "* ]] && [ -z "${SYNCTRIG_TEST_DATABASE_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/synctrig-pg.XXXXXX)
  SYNCTRIG_TEST_DATABASE_URL=$(tests/pg-cluster.sh start "$pg_dir")
fi
pg_url() { local base=${SYNCTRIG_TEST_DATABASE_URL%%\?*}; echo "${base%/*}/$1"; }
psql_admin() { PGOPTIONS=--client-min-messages=warning psql "$SYNCTRIG_TEST_DATABASE_URL" -qtAc "$1"; }

# The base: a tenant "growth" with one pool; every size's stream adds identities to it.
"$BIN" admin --data-dir "$work/base" create-tenant growth >/dev/null
pool=$("$BIN" admin --data-dir "$work/base" create-pool --tenant growth --name growth | python3 -c 'import json,sys; print(json.load(sys.stdin)["identityPoolId"])')
"$BIN" admin --data-dir "$work/base" export -o "$work/base.jsonl" >/dev/null

declare -A stream_bytes
for size in $SIZES; do
  python3 tests/growth/make_stream.py "$work/base.jsonl" "$size" > "$work/stream-$size.jsonl"
  stream_bytes[$size]=$(stat -c %s "$work/stream-$size.jsonl")
  for backend in $BACKENDS; do
    start=$SECONDS
    if [ "$backend" = sqlite ]; then
      "$BIN" admin --data-dir "$work/master-$size" import "$work/stream-$size.jsonl" >/dev/null
    else
      psql_admin "DROP DATABASE IF EXISTS growth_master_$size" >/dev/null
      psql_admin "CREATE DATABASE growth_master_$size"
      "$BIN" admin --data-dir "$work/pgadmin" --database "$(pg_url growth_master_$size)" import "$work/stream-$size.jsonl" >/dev/null
    fi
    echo "imported $size identities on $backend in $((SECONDS - start)) s ($(du -h "$work/stream-$size.jsonl" | cut -f1) stream)"
  done
  rm -f "$work/stream-$size.jsonl"
done

# Starts serve on the run's store; sets $pid, $url and $startup (exec to the listening
# line, polled every 5 ms).
start_serve() {
  local t0 t1
  t0=$(date +%s.%N)
  "$BIN" serve --data-dir "$run/node0" "${db_args[@]}" --listen 127.0.0.1:0 >"$run/serve.out" 2>"$run/serve.err" &
  pid=$!
  until grep -q listening "$run/serve.out"; do
    kill -0 "$pid" 2>/dev/null || { cat "$run/serve.err" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(date +%s.%N)
  startup=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  url=$(grep -o 'http://[0-9.:]*' "$run/serve.out")
}

stop_serve() {
  kill -TERM "$pid"
  wait "$pid" || true
}

disk_bytes() {
  if [ "$backend" = sqlite ]; then
    stat -c %s "$run/node0"/synctrig.db "$run/node0"/synctrig.db-wal 2>/dev/null | awk '{ s += $1 } END { print s }'
  else
    psql_admin "SELECT pg_database_size('growth_run')"
  fi
}

# Disk use, and against the live data: the export stream that holds the same rows (the
# target is at most 1.2 times it).
disk() {
  local bytes
  bytes=$(disk_bytes)
  if [ "$backend" = sqlite ]; then
    stat -c '%n=%s' "$run/node0"/synctrig.db "$run/node0"/synctrig.db-wal 2>/dev/null | sed "s|$run/node0/||" | tr '\n' ' '
  else
    echo -n "database=$bytes "
  fi
  # (The empty store's stream is a few lines: no ratio to speak of.)
  [ "$size" -gt 0 ] && awk -v d="$bytes" -v s="${stream_bytes[$size]}" 'BEGIN { printf "(%.2fx the export stream)", d / s }'
  return 0
}

# One measurement: a fresh copy of the size's store; start-up, the usage calls, disk; then
# loadgen's load (its server is killed at the end, as by kill -9), disk again and a second
# start-up (which finds what the killed server left).
measure() {
  backend=$1
  local size=$2 env_db=() usage load disk1 disk2 first
  run=$work/run db_args=()
  rm -rf "$run" && mkdir -p "$run"
  if [ "$backend" = sqlite ]; then
    cp -r "$work/master-$size" "$run/node0"
  else
    mkdir -p "$run/node0"
    psql_admin "DROP DATABASE IF EXISTS growth_run"
    psql_admin "CREATE DATABASE growth_run TEMPLATE growth_master_$size"
    # The copy's writes flushed now, not by a checkpoint in the middle of the load.
    psql "$(pg_url growth_run)" -qtAc CHECKPOINT
    db_args=(--database "$(pg_url growth_run)")
    env_db=(SYNCTRIG_DATABASE_URL="$(pg_url growth_run)")
  fi
  start_serve
  first=$startup
  usage=$(python3 tests/growth/usage.py "$url" "$pool")
  stop_serve
  disk1=$(disk)
  load=$(env "${env_db[@]}" LOADGEN_DATA_DIR="$run" LOADGEN_PHASES=alone LOADGEN_SERVER_BIN="$BIN" "$LOADGEN" $LOAD | grep -E "alone|CPU" | sed 's/  */ /g' | tr '\n' ' ')
  disk2=$(disk)
  start_serve
  stop_serve
  echo "$backend $size identities: start-up ${first} s; disk ${disk1}; usage ${usage}; ${load}; after the killed load: disk ${disk2}, start-up ${startup} s, after a clean stop: disk $(disk)"
}

for round in $(seq 1 "$ROUNDS"); do
  order=$SIZES
  [ $((round % 2)) -eq 0 ] && order=$(echo "$SIZES" | tr ' ' '\n' | tac | tr '\n' ' ')
  for size in $order; do
    for backend in $BACKENDS; do
      measure "$backend" "$size"
    done
  done
done
