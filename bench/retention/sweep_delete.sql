-- Retention by DELETE: for every topic over :window events, remove the oldest ones in
-- batches of at most :batch_rows by primary-key range, one transaction per batch, and
-- move first_offset forward in that transaction (the topic row is locked only by the
-- last statement, for the instant before COMMIT). One pass over the topics per CALL:
-- a backend reports its deletes to the statistics (and so to autovacuum) only when it
-- goes idle, so the caller loops (sweep_delete.sh), as pulsebus's sweeper does, rather
-- than one endless CALL that autovacuum would never hear of.
CREATE OR REPLACE PROCEDURE sweep_delete(win BIGINT, batch_rows BIGINT, did INOUT BOOLEAN) LANGUAGE plpgsql AS $$
DECLARE r RECORD; upto BIGINT;
BEGIN
    did := false;
    FOR r IN SELECT name, head, first_offset FROM topics ORDER BY name LOOP
      upto := least(r.first_offset + batch_rows, r.head - win + 1);
      IF upto > r.first_offset THEN
        DELETE FROM events WHERE topic = r.name AND "offset" >= r.first_offset AND "offset" < upto;
        UPDATE topics SET first_offset = greatest(first_offset, upto) WHERE name = r.name;
        COMMIT;
        did := true;
      END IF;
    END LOOP;
END $$;
