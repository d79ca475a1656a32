//! Retention in storage: removing one batch of a topic's oldest events, as its config
//! (migration 0007: `retention_age_ms`, `retention_events`) asks, and moving
//! `topics.first_offset` past them in the same statement, so no reader ever sees the
//! rows gone and the offset not moved (or the reverse).
//!
//! Why one statement of bounded size rather than partitions: see README "Retention".
//! The batch is a primary-key range from `first_offset`, so a topic's retained offsets
//! stay a gapless range `first_offset..=head`. The topic row is only touched by the
//! last step (`first_offset`), for the instant before commit: appends, which lock that
//! row, never wait behind the DELETE itself.
//!
//! Durable consumers hold retention: nothing at or above a consumer's committed
//! offset + 1 goes until it is older than the consumer hold. Past the hold, the events
//! go anyway and each consumer still behind them is moved to the first retained
//! offset (its deliveries of removed records dropped), and reported to the caller.

use std::time::Duration;

use sqlx::PgExecutor;

use super::LogError;

/// How one batch is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Most events removed.
    pub max_events: i64,
    /// Consumers hold events younger than this (zero: consumers hold nothing).
    pub consumer_hold: Duration,
}

/// A consumer that was behind the removed events: its records `from..=to` were
/// removed before it committed them; it continues at `to + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The consumer.
    pub consumer: String,
    /// The first offset it had not committed.
    pub from: i64,
    /// The last offset removed.
    pub to: i64,
}

/// What one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Events removed (0: the topic keeps everything it holds, for now).
    pub events: i64,
    /// The topic's first retained offset afterwards.
    pub first_offset: i64,
    /// Consumers moved past removed events they had not committed.
    pub skipped: Vec<Skipped>,
}

/// Topics with a retention limit, by name after `$1` (all when NULL), at most `$2`.
const WITH_RETENTION: &str = "SELECT name FROM topics \
     WHERE (retention_age_ms IS NOT NULL OR retention_events > 0) \
       AND ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2";

/// One batch for topic `$1`: at most `$2` events from `first_offset`, stopping at the
/// first event the config keeps; consumers (committed + 1) hold events appended less
/// than `$3` ms ago (`$3` = 0: they hold nothing). `upto` is the new first offset,
/// never above head + 1. Scans at most `$2` rows of the primary key.
const REMOVE_BATCH: &str = r#"
WITH t AS (
    SELECT name, head, first_offset, retention_age_ms, retention_events,
           LEAST(first_offset + $2, head + 1) AS cap
    FROM topics WHERE name = $1
),
by_age AS (
    SELECT CASE WHEN t.retention_age_ms IS NULL THEN t.first_offset
           ELSE COALESCE((SELECT min(e."offset") FROM events e
                          WHERE e.topic = $1 AND e."offset" >= t.first_offset AND e."offset" < t.cap
                            AND e.appended_at >= clock_timestamp()
                                                 - t.retention_age_ms * interval '1 millisecond'),
                         t.cap) END AS upto
    FROM t
),
by_count AS (
    SELECT CASE WHEN COALESCE(t.retention_events, 0) > 0
                THEN t.head - t.retention_events + 1 ELSE t.first_offset END AS upto
    FROM t
),
held AS (
    SELECT CASE WHEN $3 = 0 OR c.floor IS NULL THEN t.cap
           ELSE GREATEST(c.floor,
                         COALESCE((SELECT min(e."offset") FROM events e
                                   WHERE e.topic = $1 AND e."offset" >= t.first_offset
                                     AND e."offset" < t.cap
                                     AND e.appended_at >= clock_timestamp()
                                                          - $3 * interval '1 millisecond'),
                                  t.cap)) END AS upto
    FROM t, (SELECT min(committed) + 1 AS floor FROM consumers WHERE topic = $1) c
),
b AS (
    SELECT t.first_offset AS first,
           GREATEST(t.first_offset,
                    LEAST(GREATEST(by_age.upto, by_count.upto), t.cap, held.upto)) AS upto
    FROM t, by_age, by_count, held
),
removed AS (
    DELETE FROM events e USING b
    WHERE e.topic = $1 AND e."offset" >= b.first AND e."offset" < b.upto
    RETURNING 1
),
dropped_deliveries AS (
    DELETE FROM deliveries d USING b WHERE d.topic = $1 AND d."offset" < b.upto
),
skipped AS (
    UPDATE consumers c
    SET committed = b.upto - 1, dispatched = GREATEST(c.dispatched, b.upto - 1),
        updated_at = clock_timestamp()
    FROM b, consumers before
    WHERE c.topic = $1 AND c.committed < b.upto - 1
      AND before.topic = c.topic AND before.name = c.name
    RETURNING c.name, before.committed + 1 AS from_offset
),
moved AS (
    UPDATE topics SET first_offset = GREATEST(topics.first_offset, b.upto)
    FROM b WHERE name = $1 AND b.upto > b.first
)
SELECT (SELECT count(*) FROM removed) AS events, b.upto AS first_offset,
       COALESCE((SELECT array_agg(name ORDER BY name) FROM skipped), '{}') AS skipped,
       COALESCE((SELECT array_agg(from_offset ORDER BY name) FROM skipped), '{}') AS skipped_from
FROM b
"#;

/// Up to `limit` names of topics that have a retention limit, after `after`.
pub async fn topics_with_retention(
    db: impl PgExecutor<'_>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, LogError> {
    sqlx::query_scalar(WITH_RETENTION)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await
        .map_err(|e| LogError::from_sqlx("listing topics with retention", e))
}

/// Removes one batch of `topic`'s oldest events that its config no longer keeps (one
/// statement, so one transaction); `None` when the topic does not exist.
pub async fn remove_batch(
    db: impl PgExecutor<'_>,
    topic: &str,
    batch: Batch,
) -> Result<Option<Removed>, LogError> {
    let hold_ms = i64::try_from(batch.consumer_hold.as_millis()).unwrap_or(i64::MAX);
    let row: Option<(i64, i64, Vec<String>, Vec<i64>)> = sqlx::query_as(REMOVE_BATCH)
        .bind(topic)
        .bind(batch.max_events)
        .bind(hold_ms)
        .fetch_optional(db)
        .await
        .map_err(|e| LogError::from_sqlx("removing events by retention", e))?;
    Ok(row.map(|(events, first_offset, names, froms)| Removed {
        events,
        first_offset,
        skipped: names
            .into_iter()
            .zip(froms)
            .map(|(consumer, from)| Skipped {
                consumer,
                from,
                to: first_offset - 1,
            })
            .collect(),
    }))
}
