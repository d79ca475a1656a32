-- The event log. Append-only: rows in `events` are never updated or deleted by pulsebus.

-- One row per topic. `head` is the last offset handed out; appends lock this row
-- (UPDATE ... RETURNING) so a topic's offsets are gapless and follow commit order.
CREATE TABLE topics (
    name        TEXT PRIMARY KEY,
    head        BIGINT NOT NULL DEFAULT 0 CHECK (head >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- One row per event: the CloudEvents envelope in columns, the payload in exactly one
-- of data_json (JSON text, queryable), data_text (other text), data_bytes (binary, or
-- the encoded message of a protobuf Any whose type URL is data_type).
CREATE TABLE events (
    topic           TEXT NOT NULL REFERENCES topics (name),
    "offset"        BIGINT NOT NULL CHECK ("offset" > 0),
    id              UUID NOT NULL,
    type            TEXT NOT NULL,
    source          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    time            TIMESTAMPTZ NOT NULL,
    correlation_id  TEXT NOT NULL,
    causation_id    TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    attributes      JSONB NOT NULL,
    content_type    TEXT NOT NULL,
    data_json       JSONB,
    data_text       TEXT,
    data_bytes      BYTEA,
    data_type       TEXT,
    appended_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, "offset"),
    CONSTRAINT events_id_unique UNIQUE (id),
    CONSTRAINT events_one_payload CHECK (num_nonnulls(data_json, data_text, data_bytes) <= 1),
    CONSTRAINT events_type_only_for_bytes CHECK (data_type IS NULL OR data_bytes IS NOT NULL)
);

-- What audits ask: everything about one aggregate, one kind of event over time, and a
-- topic from a point in time (also how subscriptions find a start time).
CREATE INDEX events_subject_time_idx ON events (subject, time);
CREATE INDEX events_type_time_idx ON events (type, time);
CREATE INDEX events_topic_appended_idx ON events (topic, appended_at);

COMMENT ON TABLE events IS 'pulsebus event log: one row per published event, append-only';
