-- Delivery attempts of an exclusive consumer's records that came back (a nack's rewind,
-- a subscriber that left holding them): {"<offset>": <deliveries that did not settle>}.
-- A record's next delivery carries delivery_attempt = that count + 1, and once the count
-- reaches max_deliveries the record goes to the dead-letter topic instead. Only offsets
-- above the committed offset and within --max-unsettled of it are kept; every write
-- drops the rest, so the map is bounded as the consumer's other state is.
ALTER TABLE consumers ADD COLUMN attempts JSONB NOT NULL DEFAULT '{}';
