//! Durable consumers in PostgreSQL: committed offsets, seeks, and the lease that keeps
//! one subscriber active per consumer across every replica. Times come from the
//! database clock, so replicas with skewed clocks agree on who holds a lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use uuid::Uuid;

use super::{ENSURE_TOPIC, EventLog, LogError};

/// A consumer's position: `committed` (last acknowledged offset, 0 for none) and the
/// seek epoch, which changes whenever Seek moves the position anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Position {
    /// Everything up to this offset is done.
    pub committed: i64,
    /// Bumped by every Seek, so an attached subscription knows to reposition.
    #[sqlx(rename = "seek_epoch")]
    pub epoch: i64,
}

/// A consumer as ListConsumers reports it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConsumerInfo {
    /// The consumer name.
    pub name: String,
    /// Last acknowledged offset.
    pub committed: i64,
    /// Head minus committed.
    pub lag: i64,
    /// Whether a subscriber holds a live lease, on any replica.
    pub attached: bool,
    /// When the position last moved.
    pub updated_at: DateTime<Utc>,
}

/// The outcome of DeleteConsumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The consumer is gone.
    Yes,
    /// There was no such consumer.
    NotFound,
    /// A subscriber is attached; nothing was deleted.
    Attached,
}

const POSITION: &str = "SELECT committed, seek_epoch FROM consumers WHERE topic = $1 AND name = $2";
const CREATE: &str = "INSERT INTO consumers (topic, name, committed) VALUES ($1, $2, $3) \
     ON CONFLICT DO NOTHING RETURNING committed, seek_epoch";

/// Takes the lease when it is free, already ours, or expired.
const ACQUIRE: &str = r#"
UPDATE consumers SET owner = $3, lease_expires_at = clock_timestamp() + $4 * interval '1 millisecond'
WHERE topic = $1 AND name = $2
  AND (owner IS NULL OR owner = $3 OR lease_expires_at < clock_timestamp())
RETURNING committed, seek_epoch"#;

/// Frees the lease and rings the release doorbell so a standby takes over at once.
const RELEASE: &str = concat!(
    r#"
WITH released AS (
    UPDATE consumers SET owner = NULL, lease_expires_at = NULL
    WHERE topic = $1 AND name = $2 AND owner = $3
    RETURNING 1
)
SELECT "#,
    notify_release!("$1", "$2"),
    " FROM released"
);

/// Cumulative ack: never moves backwards, and an ack from an older seek epoch ($4,
/// when given) moves nothing; announces the position.
const ACK: &str = concat!(
    r#"
WITH acked AS (
    UPDATE consumers
    SET committed = CASE WHEN $4::int8 IS NULL OR $4 >= seek_epoch
                         THEN GREATEST(committed, $3) ELSE committed END,
        updated_at = CASE WHEN ($4::int8 IS NULL OR $4 >= seek_epoch) AND $3 > committed
                          THEN clock_timestamp() ELSE updated_at END
    WHERE topic = $1 AND name = $2
    RETURNING committed, seek_epoch
)
SELECT committed, seek_epoch, "#,
    notify_consumer!("$1", "$2", "committed", "seek_epoch"),
    " FROM acked"
);

/// Moves (or creates) a consumer anywhere and bumps its seek epoch.
const SEEK: &str = concat!(
    r#"
WITH moved AS (
    INSERT INTO consumers AS c (topic, name, committed) VALUES ($1, $2, $3)
    ON CONFLICT (topic, name) DO UPDATE
    SET committed = EXCLUDED.committed, seek_epoch = c.seek_epoch + 1, updated_at = clock_timestamp()
    RETURNING committed, seek_epoch
)
SELECT committed, seek_epoch, "#,
    notify_consumer!("$1", "$2", "committed", "seek_epoch"),
    " FROM moved"
);

/// Moves an attached consumer past events its type filter skipped, but only when every
/// delivered event is already acknowledged (committed >= $5).
const SKIP_FILTERED: &str = r#"
UPDATE consumers SET committed = $4, updated_at = clock_timestamp()
WHERE topic = $1 AND name = $2 AND owner = $3 AND committed >= $5 AND committed < $4
RETURNING committed, seek_epoch"#;

const LIST: &str = r#"
SELECT c.name, c.committed, t.head - c.committed AS lag,
       (c.owner IS NOT NULL AND c.lease_expires_at > clock_timestamp()) AS attached, c.updated_at
FROM consumers c JOIN topics t ON t.name = c.topic
WHERE c.topic = $1 AND ($2::text IS NULL OR c.name > $2)
ORDER BY c.name
LIMIT $3"#;

const DELETE: &str = r#"
DELETE FROM consumers
WHERE topic = $1 AND name = $2 AND NOT (owner IS NOT NULL AND lease_expires_at > clock_timestamp())
RETURNING 1::int4"#;

const FIRST_AT: &str = r#"SELECT min("offset") FROM events WHERE topic = $1 AND appended_at >= $2"#;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `sql` with the consumer's topic and name bound as `$1` and `$2`; callers bind the rest.
fn for_consumer<'q, O>(
    sql: &'static str,
    topic: &'q str,
    name: &'q str,
) -> QueryAs<'q, Postgres, O, PgArguments>
where
    O: for<'r> sqlx::FromRow<'r, PgRow>,
{
    sqlx::query_as(sql).bind(topic).bind(name)
}

/// Maps a driver error for `context`.
fn failed(context: &'static str) -> impl FnOnce(sqlx::Error) -> LogError {
    move |e| LogError::from_sqlx(context, e)
}

impl EventLog {
    /// Creates the topic if needed (subscribers may start before the first publish).
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), LogError> {
        sqlx::query(ENSURE_TOPIC)
            .bind(topic)
            .execute(&self.pool)
            .await
            .map_err(failed("creating a topic"))?;
        Ok(())
    }

    /// The consumer's position, if it exists.
    pub async fn position(&self, topic: &str, name: &str) -> Result<Option<Position>, LogError> {
        for_consumer(POSITION, topic, name)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("reading a consumer"))
    }

    /// Creates the consumer at `committed` unless it exists; returns its position.
    pub async fn create_consumer(
        &self,
        topic: &str,
        name: &str,
        committed: i64,
    ) -> Result<Position, LogError> {
        for_consumer::<Position>(CREATE, topic, name)
            .bind(committed)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("creating a consumer"))?;
        self.position(topic, name)
            .await?
            .ok_or_else(|| LogError::TopicNotFound {
                topic: topic.to_owned(),
            })
    }

    /// Claims the consumer's lease for `owner` for `ttl`; `None` while another holds it.
    pub async fn acquire_lease(
        &self,
        topic: &str,
        name: &str,
        owner: Uuid,
        ttl: Duration,
    ) -> Result<Option<Position>, LogError> {
        for_consumer(ACQUIRE, topic, name)
            .bind(owner)
            .bind(millis(ttl))
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("acquiring a consumer lease"))
    }

    /// Gives up `owner`'s lease (if it still holds it) and wakes standbys.
    pub async fn release_lease(
        &self,
        topic: &str,
        name: &str,
        owner: Uuid,
    ) -> Result<(), LogError> {
        sqlx::query(RELEASE)
            .bind(topic)
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(failed("releasing a consumer lease"))?;
        Ok(())
    }

    /// Commits `offset` for the consumer (cumulative, never backwards; nothing moves
    /// when `epoch` is older than the consumer's); `None` if the consumer does not exist.
    pub async fn ack(
        &self,
        topic: &str,
        name: &str,
        offset: i64,
        epoch: Option<i64>,
    ) -> Result<Option<Position>, LogError> {
        for_consumer(ACK, topic, name)
            .bind(offset)
            .bind(epoch)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("acknowledging"))
    }

    /// Sets the consumer's committed offset (creating it if needed) and bumps its epoch.
    pub async fn seek(
        &self,
        topic: &str,
        name: &str,
        committed: i64,
    ) -> Result<Position, LogError> {
        let moved: Option<Position> = for_consumer(SEEK, topic, name)
            .bind(committed)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("seeking"))?;
        moved.ok_or_else(|| LogError::TopicNotFound {
            topic: topic.to_owned(),
        })
    }

    /// Moves `owner`'s consumer to `to` over filtered-out events, if everything
    /// delivered (up to `delivered`) is acknowledged. Returns the new position if moved.
    pub async fn skip_filtered(
        &self,
        topic: &str,
        name: &str,
        owner: Uuid,
        to: i64,
        delivered: i64,
    ) -> Result<Option<Position>, LogError> {
        for_consumer(SKIP_FILTERED, topic, name)
            .bind(owner)
            .bind(to)
            .bind(delivered)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("skipping filtered events"))
    }

    /// Up to `limit` of the topic's consumers by name, after `after`, with their lag
    /// and whether one is attached.
    pub async fn list_consumers(
        &self,
        topic: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConsumerInfo>, LogError> {
        sqlx::query_as(LIST)
            .bind(topic)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(failed("listing consumers"))
    }

    /// Deletes a detached consumer.
    pub async fn delete_consumer(&self, topic: &str, name: &str) -> Result<Deleted, LogError> {
        let deleted: Option<(i32,)> = for_consumer(DELETE, topic, name)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("deleting a consumer"))?;
        if deleted.is_some() {
            return Ok(Deleted::Yes);
        }
        Ok(match self.position(topic, name).await? {
            Some(_) => Deleted::Attached,
            None => Deleted::NotFound,
        })
    }

    /// The first offset appended at or after `time`, if any.
    pub async fn first_offset_at(
        &self,
        topic: &str,
        time: DateTime<Utc>,
    ) -> Result<Option<i64>, LogError> {
        sqlx::query_scalar(FIRST_AT)
            .bind(topic)
            .bind(time)
            .fetch_one(&self.pool)
            .await
            .map_err(failed("finding an offset by time"))
    }
}
