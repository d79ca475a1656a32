#!/usr/bin/env bash
# Where a lone publisher's time goes (issue 15, part 4), on the release build:
#
#   cargo build --release -p pulsebus --bin pulsebus --example publish_latency
#   bench/scripts/lone_publisher.sh
#
# Starts a scratch PostgreSQL 15 cluster (PG_BIN, default /usr/lib/postgresql/15/bin;
# as root it runs as user postgres) with auto_explain logging every statement's plan
# with ANALYZE, BUFFERS and WAL, and pg_stat_statements; then `pulsebus serve` on it,
# and one closed-loop publisher of 1 KiB events for SECONDS (10) per round:
#   1. RUST_LOG unset (info: every Publish opens its span, as in production);
#   2. RUST_LOG=warn (no span recorded);
# Prints each round's client-side latency, PostgreSQL's own execution time for the
# append statement (pg_stat_statements mean), and one auto_explain plan of it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${PG_BIN:=/usr/lib/postgresql/15/bin}" "${SECONDS_EACH:=10}" "${PORT:=50571}" "${PGPORT:=55491}"
: "${BUILD:=$root/target/release}"
dir=$(mktemp -d /tmp/lone-publisher.XXXXXX)
chmod 755 "$dir"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w start -o "-k $dir -p $PGPORT -c listen_addresses= \
  -c shared_preload_libraries=auto_explain,pg_stat_statements -c auto_explain.log_min_duration=0 \
  -c auto_explain.log_analyze=on -c auto_explain.log_buffers=on -c auto_explain.log_wal=on \
  -c auto_explain.log_timing=on -c auto_explain.log_nested_statements=on" >/dev/null
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
psql() { command psql -X -q -At -h "$dir" -p "$PGPORT" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE lone"
psql -d lone -c "CREATE EXTENSION pg_stat_statements"
url="postgres://postgres@localhost/lone?host=$dir&port=$PGPORT"

round() {
  local label=$1
  shift
  env "$@" "$BUILD/pulsebus" serve --database-url "$url" --listen "127.0.0.1:$PORT" \
    --log-format json > "$dir/server.log" 2>&1 &
  server=$!
  until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.2; done
  # Warm up (creates the topic, fills caches), then measure with fresh statistics.
  "$BUILD/examples/publish_latency" "http://127.0.0.1:$PORT" lone 1 2 >/dev/null
  psql -d lone -c "SELECT pg_stat_statements_reset()" >/dev/null
  : > "$dir/pg.log"
  echo "== $label: $("$BUILD/examples/publish_latency" "http://127.0.0.1:$PORT" lone 1 "$SECONDS_EACH")"
  psql -d lone -F ' ' -c "SELECT calls, round(mean_exec_time::numeric, 3) AS mean_ms,
      round(stddev_exec_time::numeric, 3) AS sd_ms, wal_records / calls AS wal_records,
      round(wal_bytes / calls) AS wal_bytes, left(regexp_replace(query, '\s+', ' ', 'g'), 60)
      FROM pg_stat_statements WHERE calls > 100 ORDER BY total_exec_time DESC LIMIT 4"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
}
round "spans on (RUST_LOG unset)" -u RUST_LOG
cp "$dir/pg.log" "$dir/pg-first.log"
round "no spans (RUST_LOG=warn)" RUST_LOG=warn
echo "== one auto_explain plan of the append statement (first round):"
# A log entry starts with the default prefix's timestamp; print the first entry that is a
# plan (auto_explain's "plan:") of a statement inserting into events.
awk '/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / { if (hit) exit; buf = ""; plan = /plan:/ }
  plan { buf = buf $0 "\n"; if (/INSERT INTO events/) hit = 1 }
  END { if (hit) printf "%s", buf; else print "(no plan of the append in the log)" }' "$dir/pg-first.log" | head -80
