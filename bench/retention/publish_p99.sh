#!/usr/bin/env bash
# Publish latency while retention removes 1,000,000 events, against the same with
# retention idle, in one invocation, on the release build:
#
#   cargo build --release -p pulsebus --bin pulsebus --example publish_latency
#   PGHOST=/tmp/pg PGPORT=5432 PGUSER=postgres bench/retention/publish_p99.sh
#
# Starts `pulsebus serve` (default flags, --retention-interval 1s) on database
# retention_p99 of the PostgreSQL that PGHOST/PGPORT/PGUSER name (a scratch one;
# recreated), preloads EVENTS (1,000,000) events of 1 KiB appended a day ago into topic
# "churn", then runs PUBLISHERS (8) closed-loop publishers of one 1 KiB event per call
# into "churn" for SECONDS (20): once with no retention config, once right after
# setting retention_age to 1 hour, so the sweeper removes the preloaded events while
# they publish. Prints both latency lines and how long the removal took.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${EVENTS:=1000000}" "${PUBLISHERS:=8}" "${SECONDS_EACH:=20}" "${PORT:=50561}"
# SERVE_ARGS: more `pulsebus serve` flags, e.g. "--retention-batch-events 2000"
: "${SERVE_ARGS:=}"
# BUILD: target/release (default) or target/debug
: "${BUILD:=$root/target/release}"
db=retention_p99
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
url="postgres://$PGUSER@localhost/$db?host=$PGHOST&port=$PGPORT"
log=$(mktemp /tmp/retention-p99.XXXXXX.log)
"$BUILD/pulsebus" serve --database-url "$url" --listen "127.0.0.1:$PORT" \
  --retention-interval 1s --log-format json $SERVE_ARGS > "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.2; done
lat() { "$BUILD/examples/publish_latency" "http://127.0.0.1:$PORT" churn "$PUBLISHERS" "$SECONDS_EACH"; }

q -c "INSERT INTO topics (name) VALUES ('churn')"
q -c "INSERT INTO events (topic, \"offset\", id, type, source, subject, time, correlation_id,
        causation_id, schema_version, attributes, content_type, data_bytes, appended_at)
      SELECT 'churn', g, gen_random_uuid(), 'bench', 'preload', '', now(), '', '', 1, '{}',
             'application/octet-stream', convert_to(repeat(md5(g::text), 32), 'UTF8'),
             now() - interval '1 day'
      FROM generate_series(1, $EVENTS) g"
q -c "UPDATE topics SET head = $EVENTS WHERE name = 'churn'"
q -c "VACUUM ANALYZE events"
# the preload's writes are flushed now, not during the idle measurement
q -c "CHECKPOINT"
echo "preloaded $EVENTS events"

echo "retention idle:     $(lat)"
q -c "UPDATE topics SET retention_age_ms = 3600000 WHERE name = 'churn'"
start=$(date +%s.%N)
lat > "$log.sweeping" &
publisher=$!
until [ "$(q -c "SELECT first_offset > $EVENTS FROM topics WHERE name = 'churn'")" = t ]; do sleep 0.1; done
took=$(echo "$(date +%s.%N) - $start" | bc)
wait $publisher
echo "retention removing: $(cat "$log.sweeping")"
echo "the sweeper removed $EVENTS events in ${took}s (publishing ran ${SECONDS_EACH}s from the same start)"
echo "left: $(q -c "SELECT count(*) FROM events WHERE topic = 'churn' AND \"offset\" <= $EVENTS") preloaded rows; first_offset $(q -c "SELECT first_offset FROM topics WHERE name = 'churn'")"
