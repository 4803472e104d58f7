#!/usr/bin/env bash
# What PostgreSQL itself needs per sync on this machine, with no application server at all:
# pgbench (prepared statements, 32 clients, 2 threads) on a throwaway cluster of
# tests/pg-cluster.sh (default settings: fsync and synchronous_commit on), for four
# workloads of the same shape as a sync (1,000 datasets of one record each):
#   sync   ListRecords' read, then one write transaction statement by statement (BEGIN, lock the
#          dataset, upsert the record, count the dataset, COMMIT)
#   min2   the read, then the whole write as one statement (a writable CTE, autocommit): two
#          round trips, the least any design can do
#   min3   min2 with the read a trigger needs between them (UpdateRecords reads the dataset
#          to build the trigger's event, then writes on condition nothing changed): three
#          round trips, the least a sync with a Sync Trigger can do
#   floor  one UPDATE of one row, autocommit: PostgreSQL's cost of a durable write at all
# For each it prints transactions per second and PostgreSQL's CPU per transaction (the
# backends' user and system time, read from the postmaster's children when they exit), and
# pgbench's own CPU. BENCHMARKS.md (issue 26, round 10) compares them with the budget a
# PostgreSQL node has beside the server and the load generator on the same cores.
# Usage: tests/bench-pg-floor.sh [SECONDS per run, default 10] [ROUNDS, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
rounds=${2:-2}
pg_dir=$(mktemp -d /tmp/synctrig-pg-floor.XXXXXX)
trap 'tests/pg-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true; rm -rf "$pg_dir"' EXIT
url=$(tests/pg-cluster.sh start "$pg_dir")
pgbench="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pgbench"
scripts="$pg_dir/scripts"
mkdir -p "$scripts"
psql "$url" -q <<'SQL'
CREATE TABLE ds (id int PRIMARY KEY, sync_count bigint NOT NULL);
CREATE TABLE rec (ds int, key text, value text, sync_count bigint, PRIMARY KEY (ds, key));
INSERT INTO ds SELECT g, 0 FROM generate_series(1, 1000) g;
INSERT INTO rec SELECT g, 'counter', '0', 0 FROM generate_series(1, 1000) g;
SQL
cat >"$scripts/sync.sql" <<'SQL'
\set ds random(1, 1000)
SELECT key, value, sync_count FROM rec WHERE ds = :ds;
BEGIN;
SELECT sync_count FROM ds WHERE id = :ds FOR UPDATE;
INSERT INTO rec VALUES (:ds, 'counter', 'v', 1) ON CONFLICT (ds, key) DO UPDATE SET value = excluded.value, sync_count = rec.sync_count + 1;
UPDATE ds SET sync_count = sync_count + 1 WHERE id = :ds;
COMMIT;
SQL
cat >"$scripts/min2.sql" <<'SQL'
\set ds random(1, 1000)
SELECT key, value, sync_count FROM rec WHERE ds = :ds;
WITH d AS (UPDATE ds SET sync_count = sync_count + 1 WHERE id = :ds RETURNING id, sync_count) INSERT INTO rec SELECT id, 'counter', 'v', sync_count FROM d ON CONFLICT (ds, key) DO UPDATE SET value = excluded.value, sync_count = excluded.sync_count;
SQL
cat >"$scripts/min3.sql" <<'SQL'
\set ds random(1, 1000)
SELECT key, value, sync_count FROM rec WHERE ds = :ds;
SELECT d.sync_count AS seen, r.key, r.value FROM ds d JOIN rec r ON r.ds = d.id WHERE d.id = :ds \gset
WITH d AS (UPDATE ds SET sync_count = sync_count + 1 WHERE id = :ds AND sync_count = :seen RETURNING id, sync_count) INSERT INTO rec SELECT id, 'counter', 'v', sync_count FROM d ON CONFLICT (ds, key) DO UPDATE SET value = excluded.value, sync_count = excluded.sync_count;
SQL
cat >"$scripts/floor.sql" <<'SQL'
\set ds random(1, 1000)
UPDATE ds SET sync_count = sync_count + 1 WHERE id = :ds;
SQL
postmaster=$(head -1 "$pg_dir/data/postmaster.pid")
# User + system time of the postmaster's exited children (its backends), in clock ticks.
children_ticks() { awk '{print $16 + $17}' "/proc/$postmaster/stat"; }
tick=$(getconf CLK_TCK)
for round in $(seq "$rounds"); do
  for workload in sync min3 min2 floor; do
    before=$(children_ticks)
    # `times` in a shell of its own: its last line is pgbench's user and system time (in the
    # C locale: a decimal point, not a comma).
    out=$(LC_ALL=C bash -c '"$@" 2>&1 || echo "pgbench failed: exit $?"; times' _ "$pgbench" -n -M prepared \
      -c 32 -j 2 -T "$seconds" -f "$scripts/$workload.sql" "$url")
    if grep -q "pgbench failed\|aborted" <<<"$out"; then
      echo "$out" >&2
      exit 1
    fi
    # The backends exit after pgbench disconnects; their time counts once they are reaped.
    sleep 2
    after=$(children_ticks)
    tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out")
    n=$(grep -oP 'processed: \K[0-9]+' <<<"$out")
    python3 - "$round" "$workload" "$tps" "$n" "$before" "$after" "$tick" "$(tail -1 <<<"$out")" <<'PY'
import re, sys
rnd, name, tps, n, before, after, tick, times = sys.argv[1:]
n = int(n)
pg = (int(after) - int(before)) / int(tick) * 1e6 / n
# "1m2.345s 0m0.678s": minutes and seconds of user, then system time.
client = sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", times)) * 1e6 / n
print(f"round {rnd} {name:5}: {float(tps):8.0f} tx/s; PostgreSQL {pg:5.0f} µs CPU per tx, pgbench {client:4.0f} µs")
PY
  done
done
