-- Durable consumers: each one's committed offset (everything up to it is done) and the
-- lease that keeps a single subscriber active across all server replicas.
CREATE TABLE consumers (
    topic             TEXT NOT NULL REFERENCES topics (name),
    name              TEXT NOT NULL,
    -- Last offset acknowledged (0: nothing yet). Acks only move it forward; Seek may
    -- move it anywhere and bumps seek_epoch so an attached subscription repositions.
    committed         BIGINT NOT NULL CHECK (committed >= 0),
    seek_epoch        BIGINT NOT NULL DEFAULT 0,
    -- The attached subscription and how long its claim lasts without renewal.
    owner             UUID,
    lease_expires_at  TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (topic, name)
);
