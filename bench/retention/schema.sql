-- The events table as pulsebus's migrations 0001-0006 leave it (plain, not partitioned),
-- plus topics.first_offset as migration 0007 adds it.
DROP TABLE IF EXISTS events, topics CASCADE;
CREATE TABLE topics (
    name TEXT PRIMARY KEY,
    head BIGINT NOT NULL DEFAULT 0,
    first_offset BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE events (
    topic TEXT NOT NULL REFERENCES topics (name),
    "offset" BIGINT NOT NULL CHECK ("offset" > 0),
    id UUID NOT NULL,
    type TEXT NOT NULL, source TEXT NOT NULL, subject TEXT NOT NULL,
    time TIMESTAMPTZ NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL,
    schema_version INTEGER NOT NULL, attributes JSONB NOT NULL, content_type TEXT NOT NULL,
    data_json JSON, data_text TEXT, data_bytes BYTEA, data_type TEXT,
    appended_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, "offset"),
    CONSTRAINT events_id_unique UNIQUE (id)
);
CREATE INDEX events_subject_time_idx ON events (subject, time);
CREATE INDEX events_type_time_idx ON events (type, time);
CREATE INDEX events_topic_appended_idx ON events (topic, appended_at);
INSERT INTO topics (name) SELECT 't' || g FROM generate_series(1, :ntopics) g;
