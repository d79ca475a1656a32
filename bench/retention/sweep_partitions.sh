#!/usr/bin/env bash
# The partitioned variant's sweeper (see study.sh): while $3 exists, keeps partitions
# ahead of each head and drops every offset partition wholly older than the newest
# $1 events of its topic (DETACH ... CONCURRENTLY, so the parent is not locked
# exclusively, then DROP), deleting the dropped rows' ids from event_ids.
set -euo pipefail
win=$1 part=$2 flag=$3
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
while [ -e "$flag" ]; do
  q -c "CALL add_partitions($part, $((part * 4)))"
  q -F ' ' -c "
    SELECT t.name, c.relname, split_part(c.relname, '_', 3)::bigint
    FROM topics t JOIN pg_inherits i ON i.inhparent = ('events_' || t.name)::regclass
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE split_part(c.relname, '_', 3)::bigint + $part <= t.head - $win + 1" |
  while read -r topic rel lo; do
    q -c "ALTER TABLE events_$topic DETACH PARTITION $rel CONCURRENTLY"
    q -c "DROP TABLE $rel"
    q -c "DELETE FROM event_ids WHERE topic = '$topic' AND \"offset\" < $((lo + part))" \
      -c "UPDATE topics SET first_offset = greatest(first_offset, $((lo + part))) WHERE name = '$topic'"
  done
  sleep 0.2
done
