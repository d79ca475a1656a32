-- The same rows, declaratively partitioned: LIST by topic, each topic RANGE by offset,
-- so retention is DROP TABLE of a whole offset range. UNIQUE (id) is impossible here
-- (a unique constraint must include the partition key): ids go to a side table that
-- retention must DELETE from anyway.
DROP TABLE IF EXISTS events, topics, event_ids CASCADE;
CREATE TABLE topics (
    name TEXT PRIMARY KEY,
    head BIGINT NOT NULL DEFAULT 0,
    first_offset BIGINT NOT NULL DEFAULT 1,
    -- the first offset not covered by a partition yet
    part_end BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE events (
    topic TEXT NOT NULL,
    "offset" BIGINT NOT NULL CHECK ("offset" > 0),
    id UUID NOT NULL,
    type TEXT NOT NULL, source TEXT NOT NULL, subject TEXT NOT NULL,
    time TIMESTAMPTZ NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL,
    schema_version INTEGER NOT NULL, attributes JSONB NOT NULL, content_type TEXT NOT NULL,
    data_json JSON, data_text TEXT, data_bytes BYTEA, data_type TEXT,
    appended_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, "offset")
) PARTITION BY LIST (topic);
CREATE INDEX events_subject_time_idx ON events (subject, time);
CREATE INDEX events_type_time_idx ON events (type, time);
CREATE INDEX events_topic_appended_idx ON events (topic, appended_at);
-- idempotency without the partition key: one row per id, deleted by retention
CREATE TABLE event_ids (id UUID PRIMARY KEY, topic TEXT NOT NULL, "offset" BIGINT NOT NULL);

INSERT INTO topics (name) SELECT 't' || g FROM generate_series(1, :ntopics) g;
DO $$
DECLARE t TEXT;
BEGIN
  FOR t IN SELECT name FROM topics LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES IN (%L) PARTITION BY RANGE ("offset")',
                   'events_' || t, t);
  END LOOP;
END $$;

-- Creates offset partitions of :part_size ahead of each topic's head (as partman's
-- run_maintenance does), so inserts never miss a partition.
CREATE OR REPLACE PROCEDURE add_partitions(part_size BIGINT, ahead BIGINT) LANGUAGE plpgsql AS $$
DECLARE r RECORD;
BEGIN
  FOR r IN SELECT name, head, part_end FROM topics LOOP
    WHILE r.part_end <= r.head + ahead LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                     'events_' || r.name || '_' || r.part_end, 'events_' || r.name,
                     r.part_end, r.part_end + part_size);
      UPDATE topics SET part_end = r.part_end + part_size WHERE name = r.name;
      r.part_end := r.part_end + part_size;
    END LOOP;
  END LOOP;
END $$;
