#!/usr/bin/env bash
# Counts the lease-renewal UPDATE statements a server sends while 1000 durable
# subscribers sit attached to an idle topic (lease 3 s, so each renews every second).
#
# Usage: bench/scripts/lease_renewals.sh PULSEBUS_BINARY ADMIN_URL
#   ADMIN_URL: a PostgreSQL superuser URL without a database, on a cluster started with
#   shared_preload_libraries=pg_stat_statements, e.g. postgres://postgres@127.0.0.1:5432
# Needs the test venv (scripts/test creates .venv with grpcio).
set -euo pipefail
bin=$1 admin=$2 db=pulsebus_lease_renewals port=50090
repo=$(cd "$(dirname "$0")/../.." && pwd)
sql() { psql -qAt "$admin/$1" -c "$2"; }
sql postgres "DROP DATABASE IF EXISTS $db"
sql postgres "CREATE DATABASE $db"
sql "$db" "CREATE EXTENSION pg_stat_statements"
DATABASE_URL="$admin/$db" "$bin" serve --listen 127.0.0.1:$port --consumer-lease 3s >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 2
# grpcio shares one connection between channels: the per-connection cap (1000) applies.
"$repo/.venv/bin/python" "$(dirname "$0")/lease_renewals.py" 127.0.0.1:$port 1000 30 >/dev/null &
clients=$!
sleep 12
sql "$db" "SELECT pg_stat_statements_reset()" >/dev/null
sleep 10
echo "attached: $(sql "$db" "SELECT count(*) FROM consumers WHERE lease_expires_at > clock_timestamp()")"
echo "renewal statements and rows in 10 s:"
sql "$db" "SELECT calls, rows FROM pg_stat_statements WHERE query LIKE '%SET lease_expires_at%' AND query NOT LIKE '%owner IS NULL%'"
wait $clients
