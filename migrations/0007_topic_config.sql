-- Topic lifecycle: a config per topic (retention by age and/or count, the largest
-- event) and the first retained offset. From here on pulsebus deletes from `events`
-- (retention, DeleteTopic): 0001's "never updated or deleted" holds for updates only.
-- A topic's offsets stay gapless from first_offset to head.
ALTER TABLE topics
    -- The oldest offset still stored; head + 1 when retention removed every event.
    ADD COLUMN first_offset BIGINT NOT NULL DEFAULT 1,
    -- Remove events appended longer ago than this many milliseconds (NULL: no limit).
    ADD COLUMN retention_age_ms BIGINT NULL,
    -- Keep at most this many of the newest events (NULL: no limit).
    ADD COLUMN retention_events BIGINT NULL,
    -- The largest encoded event this topic takes (NULL: the server's --max-event-bytes).
    ADD COLUMN max_event_bytes INTEGER NULL;

ALTER TABLE topics
    ADD CONSTRAINT topics_first_offset_in_range CHECK (first_offset >= 1 AND first_offset <= head + 1),
    ADD CONSTRAINT topics_retention_age_positive CHECK (retention_age_ms IS NULL OR retention_age_ms > 0),
    ADD CONSTRAINT topics_retention_events_positive CHECK (retention_events IS NULL OR retention_events > 0),
    ADD CONSTRAINT topics_max_event_bytes_positive CHECK (max_event_bytes IS NULL OR max_event_bytes > 0);
