#!/usr/bin/env bash
# Every test: Rust unit, property and integration tests (which build the trigger
# components), then the end-to-end tests that drive the real
# server with boto3, the AWS CLI and the JavaScript clients — once on SQLite and once on
# PostgreSQL, with the multi-node test on PostgreSQL.
#
# PostgreSQL: SYNCTRIG_TEST_DATABASE_URL when set (a server where the tests may create
# databases); otherwise a throwaway cluster in a temp dir, stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/install-system-packages.sh
rustup target add wasm32-wasip2
python3 -m pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
npm ci --prefix tests/js --no-audit --no-fund

if [ -z "${SYNCTRIG_TEST_DATABASE_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/synctrig-pg.XXXXXX)
  trap 'tests/pg-cluster.sh stop "$pg_dir" || true; rm -rf "$pg_dir"' EXIT
  SYNCTRIG_TEST_DATABASE_URL=$(tests/pg-cluster.sh start "$pg_dir")
  # The CAs of its TLS certificate (the TLS tests; with a server of your own, set them).
  export SYNCTRIG_TEST_DATABASE_CA="$pg_dir/tls/ca.pem" SYNCTRIG_TEST_DATABASE_OTHER_CA="$pg_dir/tls/other-ca.pem"
  export SYNCTRIG_TEST_DATABASE_URL
fi

cargo test --workspace --locked
echo "== cargo test passed after ${SECONDS}s"
# The two end-to-end passes at once: they mostly wait on servers, so together they take
# little longer than one. Each prints its report when both are done.
logs=$(mktemp -d /tmp/synctrig-e2e.XXXXXX)
python3 -m pytest -q tests/e2e -m "not multinode" >"$logs/sqlite.log" 2>&1 &
sqlite=$!
SYNCTRIG_E2E_BACKEND=postgres python3 -m pytest -q tests/e2e >"$logs/postgres.log" 2>&1 &
postgres=$!
status=0
wait $sqlite || status=1
wait $postgres || status=1
echo "== end-to-end tests on SQLite"
cat "$logs/sqlite.log"
echo "== end-to-end tests on PostgreSQL (and several nodes)"
cat "$logs/postgres.log"
rm -rf "$logs"
exit $status
