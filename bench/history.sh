#!/usr/bin/env bash
# The admin history at scale: seeds a million decided requests (`countersign dev seed`) into a fresh
# SQLite database and a fresh PostgreSQL database, then times the history's queries on each (`dev
# bench-history`: the first page and filtered pages, 51 rows as the page asks, median and p99 of 50
# runs after a warm-up) and prints the plans. The seeded databases are thrown away afterwards.
# Usage: bench/history.sh (make bench builds first). Env: DECISIONS (1000000), RUNS (50).
set -euo pipefail
cd "$(dirname "$0")/.."
decisions=${DECISIONS:-1000000}
runs=${RUNS:-50}
bin=target/release/countersign
work=$(mktemp -d)
pg_admin=${COUNTERSIGN_TEST_POSTGRES:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
pg_db=countersign_bench_history
pg_url=${pg_admin%/*}/$pg_db
results=bench/results
mkdir -p "$results"
out="$results/history-$(date -u +%Y%m%dT%H%M%SZ).txt"
cleanup() {
  rm -rf "$work"
  psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
export RUST_LOG=warn

echo "history bench: $decisions seeded requests, $runs runs per query" | tee "$out"
for backend in sqlite postgres; do
  if [ "$backend" = sqlite ]; then
    url="sqlite://$work/history.db"
  else
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db" >/dev/null
    psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
    url=$pg_url
  fi
  echo "== $backend" | tee -a "$out"
  DATABASE_URL=$url $bin dev seed --decisions "$decisions" 2>&1 | tail -1 | tee -a "$out"
  if [ "$backend" = postgres ]; then psql "$pg_url" -qc "ANALYZE" >/dev/null; fi
  DATABASE_URL=$url $bin dev bench-history --runs "$runs" | tee -a "$out"
done
echo "written to $out"
