#!/usr/bin/env bash
# Storage of JSON payloads in the two layouts considered for keeping them byte-exact:
#   json            data_json is `json` (the text verbatim, one copy): migration 0003
#   jsonb+text      data_json stays JSONB and a text column keeps the original
#   jsonb           for reference: JSONB alone (before 0003; not exact)
# for EVENTS events of a small (~170 B) and a larger (~1.4 KiB) JSON payload, in the
# real events table (migrations applied) with its indexes.
#
# Usage: bench/scripts/payload_storage.sh ADMIN_URL [EVENTS]
#   ADMIN_URL: a PostgreSQL superuser URL without a database,
#   e.g. postgres://postgres@127.0.0.1:5432
set -euo pipefail
admin=$1 n=${2:-10000} db=pulsebus_payload_storage
migrations=$(cd "$(dirname "$0")/../../migrations" && pwd)
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$admin/$1" "${@:2}"; }

small="format('{\"quiz_id\": \"q-%s\", \"lesson_id\": \"l-%s\", \"student_id\": \"s-%s\",
  \"score\": %s, \"max_score\": 100, \"attempt\": %s, \"submitted_at\": \"2024-05-01T10:00:00Z\"}',
  g, g % 50, g % 1000, g % 101, 1 + g % 3)"
large="format('{\"lesson_id\": \"l-%s\", \"title\": \"Lesson %s\", \"tags\": [\"math\", \"fractions\"],
  \"body\": \"%s\"}', g, g,
  (SELECT string_agg(md5(g::text || i::text), ' ') FROM generate_series(1, 40) i))"

printf '%-11s %-6s %12s %14s %12s\n' layout size table_bytes payload_bytes bytes/event
for layout in json jsonb+text jsonb; do
    for size in small large; do
        sql postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
        sql "$db" -f "$migrations/0001_event_log.sql" -f "$migrations/0002_consumers.sql"
        if [ "$layout" = json ]; then
            sql "$db" -f "$migrations/0003_exact_payloads.sql"
        elif [ "$layout" = jsonb+text ]; then
            sql "$db" -c "ALTER TABLE events ADD COLUMN data_json_text text"
        fi
        payload=${!size}
        sql "$db" -c "INSERT INTO topics (name, head) VALUES ('t', $n)" -c "
            INSERT INTO events (topic, \"offset\", id, type, source, subject, time,
                                correlation_id, causation_id, schema_version, attributes,
                                content_type, data_json, appended_at
                                $([ "$layout" = jsonb+text ] && echo ', data_json_text'))
            SELECT 't', g, gen_random_uuid(), 'quiz.submitted', 'quiz-service',
                   'student/s-' || g % 1000, now(), '', '', 1, '{}', 'application/json',
                   p.payload::$([ "$layout" = json ] && echo json || echo jsonb), now()
                   $([ "$layout" = jsonb+text ] && echo ', p.payload')
            FROM generate_series(1, $n) g, LATERAL (SELECT $payload AS payload) p"
        sql "$db" -c "VACUUM (ANALYZE) events"
        read -r table payload_bytes < <(sql "$db" -F ' ' -c "
            SELECT pg_total_relation_size('events'),
                   sum(pg_column_size(data_json))
                   $([ "$layout" = jsonb+text ] && echo '+ sum(pg_column_size(data_json_text))')
            FROM events")
        printf '%-11s %-6s %12s %14s %12s\n' "$layout" "$size" "$table" "$payload_bytes" \
            $((table / n))
    done
done
sql postgres -c "DROP DATABASE $db"
