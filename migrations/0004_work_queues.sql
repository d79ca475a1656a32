-- Work queues: shared and key-shared consumers, with ack deadlines, redelivery
-- back-off and dead letters.
--
-- A shared consumer's `committed` is its low-water mark: every offset at or below it is
-- settled. Offsets in (committed, dispatched] that are not settled have a row in
-- `deliveries`; everything above `dispatched` has never been handed out. The window
-- dispatched - committed is bounded by the server (--max-unsettled), so a consumer's
-- rows are bounded however far apart its slowest and fastest records are.
ALTER TABLE consumers
    ADD COLUMN mode              SMALLINT NOT NULL DEFAULT 1 CHECK (mode IN (1, 2, 3)),
    ADD COLUMN ack_deadline_ms   BIGINT   NOT NULL DEFAULT 30000,
    ADD COLUMN max_deliveries    INT      NOT NULL DEFAULT 0,
    ADD COLUMN min_backoff_ms    BIGINT   NOT NULL DEFAULT 1000,
    ADD COLUMN max_backoff_ms    BIGINT   NOT NULL DEFAULT 60000,
    ADD COLUMN dead_letter_topic TEXT     NOT NULL DEFAULT '',
    ADD COLUMN dispatched        BIGINT   NOT NULL DEFAULT 0,
    ADD COLUMN redelivered       BIGINT   NOT NULL DEFAULT 0,
    ADD COLUMN dead_lettered     BIGINT   NOT NULL DEFAULT 0;

UPDATE consumers SET dispatched = committed;

-- One row per unsettled record of a shared consumer: held by a subscriber until
-- `due_at` (its ack deadline), or waiting for (re)delivery until `due_at` (back-off).
CREATE TABLE deliveries (
    topic              TEXT        NOT NULL,
    consumer           TEXT        NOT NULL,
    "offset"           BIGINT      NOT NULL,
    -- Key-shared order: a record waits while an earlier one of its subject is unsettled.
    subject            TEXT        NOT NULL,
    -- Deliveries so far (0: not delivered yet).
    attempts           INT         NOT NULL,
    -- Key-shared: an earlier record of the same subject is unsettled; cleared when that
    -- one settles.
    blocked            BOOLEAN     NOT NULL DEFAULT false,
    -- The subscription holding it; NULL while it waits.
    owner              UUID,
    due_at             TIMESTAMPTZ NOT NULL,
    first_delivered_at TIMESTAMPTZ,
    -- Why it waits (nack reason, "ack deadline passed", ...); becomes the dead letter's.
    reason             TEXT        NOT NULL DEFAULT '',
    PRIMARY KEY (topic, consumer, "offset"),
    FOREIGN KEY (topic, consumer) REFERENCES consumers (topic, name) ON DELETE CASCADE
);

CREATE INDEX deliveries_by_subject ON deliveries (topic, consumer, subject, "offset");
-- The records ready to be handed out, oldest first.
CREATE INDEX deliveries_ready ON deliveries (topic, consumer, "offset")
    WHERE owner IS NULL AND NOT blocked;
CREATE INDEX deliveries_by_owner ON deliveries (owner) WHERE owner IS NOT NULL;
