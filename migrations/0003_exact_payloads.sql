-- Payloads exactly as sent, and protobuf payloads visible to SQL.
--
-- data_json becomes `json`: PostgreSQL keeps the text of a JSON payload verbatim (JSONB
-- normalised whitespace, key order and duplicate keys), so a record has the same bytes
-- whether it is served from a server's memory or from this table, before and after a
-- restart. `->`, `->>` and expression indexes work as before; for JSONB operators or a
-- GIN index, cast: `data_json::jsonb`. Rows stored before this migration keep the
-- normalised text JSONB gave them.
ALTER TABLE events ALTER COLUMN data_json TYPE json USING data_json::json;

-- A protobuf payload of a type the server knows (data_bytes with data_type) also gets
-- a JSON rendering of the decoded message in data_json, for SQL only: the bytes stay
-- the payload. Every other payload still lives in exactly one column.
ALTER TABLE events DROP CONSTRAINT events_one_payload;
ALTER TABLE events ADD CONSTRAINT events_one_payload CHECK (
    CASE WHEN data_type IS NULL THEN num_nonnulls(data_json, data_text, data_bytes) <= 1
         ELSE data_text IS NULL
    END
);
