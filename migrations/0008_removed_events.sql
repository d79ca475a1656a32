-- A doorbell for removed events, however they go: retention, DeleteTopic, or an
-- operator's DELETE in psql. Every server replica LISTENs on pulsebus_removed
-- (src/log/notify.rs) and drops the records it keeps in memory (the tail window) at or
-- below the announced offset, so memory never goes on serving a record PostgreSQL no
-- longer has; one path for every way of deleting.
--
-- Statement-level with a transition table: one notification per topic per statement,
-- however many rows it removed. Payload: [topic, highest removed offset, topic row
-- gone]. NOTIFY is delivered at commit, so a rolled-back delete announces nothing.
CREATE FUNCTION pulsebus_events_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pulsebus_removed', json_build_array(topic, max("offset"), false)::text)
    FROM removed GROUP BY topic;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_removed AFTER DELETE ON events
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION pulsebus_events_removed();

-- A topic row that goes (DeleteTopic) takes everything the replicas know of it: its
-- window and its known head (a topic created again with the name starts at 1). Its
-- head is the highest offset it ever had.
CREATE FUNCTION pulsebus_topics_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pulsebus_removed', json_build_array(name, head, true)::text)
    FROM removed;
    RETURN NULL;
END
$$;

CREATE TRIGGER topics_removed AFTER DELETE ON topics
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION pulsebus_topics_removed();
