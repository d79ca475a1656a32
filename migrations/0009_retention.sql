-- Retention deletes a prefix of each topic's offsets in batches (log/retention.rs), so
-- `events` churns: as many rows are deleted as appended. Autovacuum's defaults (vacuum
-- at 20% dead rows, throttled by cost delay) fall behind such a table and it bloats
-- without bound: in the retention study (bench/retention/study.sh) 10M events through
-- 20 topics keeping 10,000 each left an 11 GB heap for 260 MB of rows (42x). With
-- these settings the same churn levelled off at about 2 GB (7x, mostly free space that
-- new rows reuse): vacuum after every 10,000 dead rows, unthrottled. They only make
-- autovacuum visit `events` sooner; a topic without retention never creates dead rows.
ALTER TABLE events SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0
);
