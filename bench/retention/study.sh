#!/usr/bin/env bash
# Retention study: table and index bloat after heavy churn, DELETE vs partition DROP.
#
#   bench/retention/study.sh delete|partition
#
# Needs a scratch PostgreSQL 15 (PGHOST/PGPORT/PGUSER as for psql; database $PGDATABASE,
# default retention_study, recreated) with pgstattuple available (postgresql-contrib).
# NTOPICS topics, each keeping its newest WINDOW events; CLIENTS pgbench clients publish
# BATCH events per transaction into random topics, TX transactions each, while a sweeper
# removes everything older. Prints sizes sampled during the run and, at the end, every
# relation's size against the size of a freshly built copy of the rows that remain
# (the bloat factor), dead tuples, free space, and publish latency percentiles.
set -euo pipefail
mode=${1:?delete or partition}
here=$(cd "$(dirname "$0")" && pwd)
: "${NTOPICS:=20}" "${WINDOW:=10000}" "${BATCH:=100}" "${CLIENTS:=4}" "${TX:=6000}"
: "${SWEEP_ROWS:=10000}" "${PART:=2000}" "${SAMPLE_S:=20}"
# AUTOVAC: storage parameters for events (and event_ids), e.g.
#   AUTOVAC="autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0"
: "${AUTOVAC:=}"
export PGDATABASE=${PGDATABASE:-retention_study}
work=$(mktemp -d /tmp/retention-study.XXXXXX)
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $PGDATABASE" -c "CREATE DATABASE $PGDATABASE"
q -c "CREATE EXTENSION pgstattuple"
if [ "$mode" = delete ]; then
  q -v ntopics="$NTOPICS" -f "$here/schema.sql"
  q -f "$here/sweep_delete.sql"
  [ -z "$AUTOVAC" ] || q -c "ALTER TABLE events SET ($AUTOVAC)"
  script=$here/publish.pgbench
  touch "$work/run"
  ( while [ -e "$work/run" ]; do
      [ "$(q -At -c "CALL sweep_delete($WINDOW, $SWEEP_ROWS, false)")" = t ] || sleep 0.05
    done ) &
  sweeper=$!
else
  q -v ntopics="$NTOPICS" -f "$here/schema_partitioned.sql"
  q -c "CREATE INDEX event_ids_topic_offset ON event_ids (topic, \"offset\")"
  [ -z "$AUTOVAC" ] || q -c "ALTER TABLE event_ids SET ($AUTOVAC)"
  q -c "CALL add_partitions($PART, $((PART * 4)))"
  script=$here/publish_partitioned.pgbench
  touch "$work/run"
  "$here/sweep_partitions.sh" "$WINDOW" "$PART" "$work/run" &
  sweeper=$!
fi

sizes() {
  q -At -F ' ' -c "
    SELECT round(extract(epoch FROM now() - '$1'::timestamptz)), sum(head) / count(*),
           sum(head - first_offset + 1) / count(*),
           pg_size_pretty(sum(pg_total_relation_size(relid))::bigint),
           sum(n_dead_tup), sum(autovacuum_count)
    FROM (SELECT sum(head) head, sum(first_offset) first_offset FROM topics) t,
         (SELECT relid, n_dead_tup, autovacuum_count FROM pg_stat_user_tables
          WHERE relname LIKE 'events%' OR relname = 'event_ids') s
    GROUP BY 1" 2>/dev/null | awk '{print "t="$1"s published="$2" retained="$3" total_size="$4" "$5" dead_tuples="$6" autovacuums="$7}'
}
start=$(q -At -c "SELECT now()")
( while sleep "$SAMPLE_S"; do sizes "$start"; done ) &
sampler=$!

cd "$work"
pgbench -n -f "$script" -c "$CLIENTS" -j 2 -t "$TX" -D ntopics="$NTOPICS" -D batch="$BATCH" \
  -l --log-prefix=pub > pgbench.out 2>&1 || { cat pgbench.out; exit 1; }
grep -E "tps|latency average|failed" pgbench.out
kill "$sampler"
rm "$work/run"
wait "$sweeper"
sizes "$start"

echo "publish latency (ms) over $((CLIENTS * TX)) transactions of $BATCH events:"
cat pub.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {
  printf "  p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", a[int(NR*.5)]/1000, a[int(NR*.99)]/1000,
         a[int(NR*.999)]/1000, a[NR]/1000}'

echo "relation sizes at the end against a fresh copy of the retained rows:"
if [ "$mode" = delete ]; then
  q -c "CREATE TABLE fresh AS SELECT * FROM events" \
    -c "ALTER TABLE fresh ADD PRIMARY KEY (topic, \"offset\"), ADD CONSTRAINT fresh_id UNIQUE (id)" \
    -c "CREATE INDEX ON fresh (subject, time)" -c "CREATE INDEX ON fresh (type, time)" \
    -c "CREATE INDEX ON fresh (topic, appended_at)"
  q -c "SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, last_autovacuum
        FROM pg_stat_user_tables WHERE relname = 'events'"
  q -c "
    WITH r(name, a, b) AS (VALUES
      ('heap', 'events', 'fresh'),
      ('pkey (topic, offset)', 'events_pkey', 'fresh_pkey'),
      ('unique (id)', 'events_id_unique', 'fresh_id'),
      ('(subject, time)', 'events_subject_time_idx', 'fresh_subject_time_idx'),
      ('(type, time)', 'events_type_time_idx', 'fresh_type_time_idx'),
      ('(topic, appended_at)', 'events_topic_appended_idx', 'fresh_topic_appended_at_idx'))
    SELECT name, pg_size_pretty(pg_relation_size(a)) AS after_churn,
           pg_size_pretty(pg_relation_size(b)) AS fresh_copy,
           round(pg_relation_size(a)::numeric / pg_relation_size(b), 2) AS bloat_factor
    FROM r"
  q -c "SELECT round(dead_tuple_percent::numeric, 1) dead_pct, round(free_percent::numeric, 1) free_pct
        FROM pgstattuple('events')"
  q -c "SELECT 'events_subject_time_idx' idx, avg_leaf_density, leaf_fragmentation, deleted_pages
        FROM pgstatindex('events_subject_time_idx')
        UNION ALL SELECT 'events_pkey', avg_leaf_density, leaf_fragmentation, deleted_pages
        FROM pgstatindex('events_pkey')
        UNION ALL SELECT 'events_id_unique', avg_leaf_density, leaf_fragmentation, deleted_pages
        FROM pgstatindex('events_id_unique')"
else
  q -c "SELECT count(*) AS partitions, pg_size_pretty(sum(pg_total_relation_size(relid))) AS events_total
        FROM pg_partition_tree('events') WHERE isleaf"
  q -c "CREATE TABLE fresh_ids AS SELECT * FROM event_ids" \
    -c "ALTER TABLE fresh_ids ADD PRIMARY KEY (id)" -c "CREATE INDEX ON fresh_ids (topic, \"offset\")"
  q -c "SELECT relname, pg_size_pretty(pg_total_relation_size(relid)) after_churn,
               pg_size_pretty(pg_total_relation_size('fresh_ids')) fresh_copy,
               round(pg_total_relation_size(relid)::numeric / pg_total_relation_size('fresh_ids'), 2) bloat_factor,
               n_dead_tup FROM pg_stat_user_tables WHERE relname = 'event_ids'"
fi
rm -rf "$work"
