-- Exclusive consumers take individual acks too: the offsets above `committed` acked one
-- by one wait here until the records before them are acked, when `committed` (the
-- low-water mark) moves over them. Bounded by --max-unsettled entries per consumer.
ALTER TABLE consumers ADD COLUMN acked BIGINT[] NOT NULL DEFAULT '{}';

-- A nack of an exclusive consumer rewinds its attached stream once this time comes:
-- everything after the committed offset is delivered again, in order.
ALTER TABLE consumers ADD COLUMN rewind_at TIMESTAMPTZ;
