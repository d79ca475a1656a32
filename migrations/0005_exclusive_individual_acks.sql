-- Exclusive consumers take individual acks too: the offsets above `committed` acked one
-- by one wait here until the records before them are acked, when `committed` (the
-- low-water mark) moves over them. Bounded by --max-unsettled entries per consumer.
ALTER TABLE consumers ADD COLUMN acked BIGINT[] NOT NULL DEFAULT '{}';
