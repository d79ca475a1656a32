#!/usr/bin/env bash
# MVCC bloat of the work-queue state under load, with and without a transaction held
# open for a minute (the known failure of queues on PostgreSQL: dead tuples pile up
# while a long transaction holds back the xmin horizon).
#
# Usage: bench/scripts/deliveries_bloat.sh PULSEBUS_BINARY ADMIN_URL [SECONDS]
#   ADMIN_URL: a PostgreSQL superuser URL without a database, e.g.
#   postgres://postgres@127.0.0.1:5432. Needs the test venv (scripts/test creates .venv).
# Prints, every 10 s: records handled per second (from the client), and the size, live
# and dead tuples of table deliveries and of the consumers row's table.
set -euo pipefail
bin=$1 admin=$2 seconds=${3:-120} db=pulsebus_bloat port=50091
repo=$(cd "$(dirname "$0")/../.." && pwd)
sql() { psql -qAt "$admin/$1" -c "$2"; }
sql postgres "DROP DATABASE IF EXISTS $db"
sql postgres "CREATE DATABASE $db"
DATABASE_URL="$admin/$db" "$bin" serve --listen 127.0.0.1:$port >/dev/null 2>&1 &
server=$!
trap 'kill $server $holder 2>/dev/null' EXIT
holder=
until sql "$db" "SELECT 1 FROM pg_tables WHERE tablename = 'deliveries'" | grep -q 1; do sleep 0.2; done
"$repo/.venv/bin/python" "$(dirname "$0")/deliveries_bloat.py" 127.0.0.1:$port 20000 500 "$seconds" &
clients=$!
sample() {
  sql "$db" "SELECT 'deliveries ' || pg_size_pretty(pg_total_relation_size('deliveries')) || ' live ' || n_live_tup || ' dead ' || n_dead_tup FROM pg_stat_user_tables WHERE relname = 'deliveries'"
  sql "$db" "SELECT 'consumers  ' || pg_size_pretty(pg_total_relation_size('consumers')) || ' live ' || n_live_tup || ' dead ' || n_dead_tup FROM pg_stat_user_tables WHERE relname = 'consumers'"
}
for i in $(seq 1 $((seconds / 10))); do
  sleep 10
  if [ "$i" = 3 ]; then
    # From 30 s to 90 s: a transaction with a snapshot, held open for a minute.
    psql -qAt "$admin/$db" -c "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM events; SELECT pg_sleep(60); COMMIT;" >/dev/null &
    holder=$!
    echo "-- a transaction holds its snapshot from here for 60 s"
  fi
  echo "-- t=$((i * 10))s"; sample
done
wait $clients
