//! Topics as an operator manages them: created with a config, read, changed, and
//! deleted with their events and consumers. The config is what retention and Publish
//! read from the topic row.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::{EventLog, LogError, TopicInfo};

/// A topic's retention and limits; `None` means "no limit" (for the event size: the
/// server's `--max-event-bytes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicConfig {
    /// Remove events appended longer ago than this.
    pub retention_age: Option<Duration>,
    /// Keep at most this many of the newest events.
    pub retention_events: Option<i64>,
    /// The largest encoded event the topic accepts.
    pub max_event_bytes: Option<u32>,
}

/// A change to a topic's config: `None` keeps a setting, `Some(None)` removes the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicPatch {
    /// New age limit.
    pub retention_age: Option<Option<Duration>>,
    /// New count limit.
    pub retention_events: Option<Option<i64>>,
    /// New event size limit.
    pub max_event_bytes: Option<Option<u32>>,
}

/// What happens to a topic nobody created: Publish and Subscribe create it with
/// `defaults` (Kafka's `auto.create.topics.enable`), or refuse it with NOT_FOUND.
/// Dead-letter topics are always created, with no limits: the server makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicPolicy {
    /// Create unknown topics on first use.
    pub auto_create: bool,
    /// The config of a topic created on first use.
    pub defaults: TopicConfig,
}

impl Default for TopicPolicy {
    fn default() -> Self {
        Self {
            auto_create: true,
            defaults: TopicConfig::default(),
        }
    }
}

impl TopicPolicy {
    /// Creates `name` unless it exists; `TopicNotFound` when it does not and the policy
    /// refuses to create it.
    pub async fn create(&self, db: impl PgExecutor<'_>, name: &str) -> Result<(), LogError> {
        let err = |e| LogError::from_sqlx("creating a topic", e);
        if !self.auto_create {
            let exists: Option<i32> = sqlx::query_scalar(EXISTS)
                .bind(name)
                .fetch_optional(db)
                .await
                .map_err(err)?;
            return exists.map(drop).ok_or_else(|| not_found(name));
        }
        let d = self.defaults;
        sqlx::query(ENSURE)
            .bind(name)
            .bind(d.retention_age.map(millis))
            .bind(d.retention_events)
            .bind(d.max_event_bytes.map(bytes))
            .execute(db)
            .await
            .map_err(err)?;
        Ok(())
    }
}

/// What DeleteTopic removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRemoved {
    /// Events removed.
    pub events: i64,
    /// Durable consumers removed.
    pub consumers: i64,
}

/// The columns every topic query returns, in [`TopicRow`]'s order.
macro_rules! topic_columns {
    () => {
        "name, head, first_offset, created_at, retention_age_ms, retention_events, max_event_bytes"
    };
}

const CREATE: &str = concat!(
    "INSERT INTO topics (name, retention_age_ms, retention_events, max_event_bytes) ",
    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING ",
    topic_columns!()
);
const ENSURE: &str = "INSERT INTO topics (name, retention_age_ms, retention_events, \
     max_event_bytes) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const EXISTS: &str = "SELECT 1::int4 FROM topics WHERE name = $1";
const GET: &str = concat!("SELECT ", topic_columns!(), " FROM topics WHERE name = $1");
/// `$2`/`$4`/`$6` say whether to set the setting after each.
const UPDATE: &str = concat!(
    "UPDATE topics SET ",
    "retention_age_ms = CASE WHEN $2 THEN $3 ELSE retention_age_ms END, ",
    "retention_events = CASE WHEN $4 THEN $5 ELSE retention_events END, ",
    "max_event_bytes = CASE WHEN $6 THEN $7 ELSE max_event_bytes END ",
    "WHERE name = $1 RETURNING ",
    topic_columns!()
);
const LIST: &str = concat!(
    "SELECT ",
    topic_columns!(),
    " FROM topics WHERE $1::text IS NULL OR name > $1 ORDER BY name LIMIT $2"
);
const LOCK: &str = "SELECT head FROM topics WHERE name = $1 FOR UPDATE";
/// Durable consumers of `$1` with a subscriber attached on any replica: an exclusive
/// consumer's live lease, or a shared consumer's records held by a live subscriber.
const ATTACHED: &str = r#"
SELECT count(*) FROM consumers c
WHERE c.topic = $1
  AND CASE WHEN c.mode = 1 THEN c.owner IS NOT NULL AND c.lease_expires_at > clock_timestamp()
           ELSE EXISTS (SELECT 1 FROM deliveries d
                        WHERE d.topic = c.topic AND d.consumer = c.name
                          AND d.owner IS NOT NULL AND d.due_at > clock_timestamp())
      END"#;
/// Consumers go first (their deliveries cascade), then events, then the row.
const DELETE_CONSUMERS: &str = "DELETE FROM consumers WHERE topic = $1";
const DELETE_EVENTS: &str = "DELETE FROM events WHERE topic = $1";
/// Removes the row; the trigger of migration 0008 tells every replica.
const DELETE_TOPIC: &str = "DELETE FROM topics WHERE name = $1";

/// One row of [`topic_columns`].
type TopicRow = (
    String,
    i64,
    i64,
    DateTime<Utc>,
    Option<i64>,
    Option<i64>,
    Option<i32>,
);

fn info(row: TopicRow) -> TopicInfo {
    let (name, head, first_offset, created_at, age_ms, events, max_bytes) = row;
    TopicInfo {
        name,
        head,
        first_offset,
        event_count: head - first_offset + 1,
        created_at,
        config: TopicConfig {
            retention_age: age_ms.map(|ms| Duration::from_millis(ms.unsigned_abs())),
            retention_events: events,
            max_event_bytes: max_bytes.map(i32::unsigned_abs),
        },
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn bytes(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl EventLog {
    /// Creates `name` with `config` (`TopicExists` when it exists already).
    pub async fn create_topic(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<TopicInfo, LogError> {
        let row: Option<TopicRow> = sqlx::query_as(CREATE)
            .bind(name)
            .bind(config.retention_age.map(millis))
            .bind(config.retention_events)
            .bind(config.max_event_bytes.map(bytes))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("creating a topic", e))?;
        row.map(info).ok_or_else(|| LogError::TopicExists {
            topic: name.to_owned(),
        })
    }

    /// Up to `limit` topics by name, after `after` (from the first when `None`).
    pub async fn list_topics(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TopicInfo>, LogError> {
        let rows: Vec<TopicRow> = sqlx::query_as(LIST)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("listing topics", e))?;
        Ok(rows.into_iter().map(info).collect())
    }

    /// The topic `name`.
    pub async fn topic(&self, name: &str) -> Result<TopicInfo, LogError> {
        get(&self.pool, name).await?.ok_or_else(|| not_found(name))
    }

    /// Applies `patch` to `name`'s config.
    pub async fn update_topic(&self, name: &str, patch: TopicPatch) -> Result<TopicInfo, LogError> {
        let row: Option<TopicRow> = sqlx::query_as(UPDATE)
            .bind(name)
            .bind(patch.retention_age.is_some())
            .bind(patch.retention_age.flatten().map(millis))
            .bind(patch.retention_events.is_some())
            .bind(patch.retention_events.flatten())
            .bind(patch.max_event_bytes.is_some())
            .bind(patch.max_event_bytes.flatten().map(bytes))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("updating a topic", e))?;
        row.map(info).ok_or_else(|| not_found(name))
    }

    /// Deletes `name` with its events and consumers, in one transaction that holds the
    /// topic row (appends to it wait, then recreate it when auto-creation is on).
    /// Unless `force`, refused while a durable consumer has a subscriber attached.
    pub async fn delete_topic(&self, name: &str, force: bool) -> Result<TopicRemoved, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("deleting a topic"))?;
        let locked: Option<i64> = sqlx::query_scalar(LOCK)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err("locking a topic"))?;
        let Some(head) = locked else {
            return Err(not_found(name));
        };
        let attached: i64 = sqlx::query_scalar(ATTACHED)
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(err("counting attached consumers"))?;
        if attached > 0 && !force {
            return Err(LogError::TopicInUse {
                topic: name.to_owned(),
                consumers: attached,
            });
        }
        let run = |sql| sqlx::query(sql).bind(name);
        let consumers = run(DELETE_CONSUMERS)
            .execute(&mut *tx)
            .await
            .map_err(err("deleting a topic's consumers"))?
            .rows_affected();
        let events = run(DELETE_EVENTS)
            .execute(&mut *tx)
            .await
            .map_err(err("deleting a topic's events"))?
            .rows_affected();
        run(DELETE_TOPIC)
            .execute(&mut *tx)
            .await
            .map_err(err("deleting a topic"))?;
        tx.commit()
            .await
            .map_err(err("committing a topic deletion"))?;
        // At once here; every replica (this one again) hears the trigger's NOTIFY.
        self.sink.deleted(name, head);
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(TopicRemoved {
            events: count(events),
            consumers: count(consumers),
        })
    }
}

fn not_found(name: &str) -> LogError {
    LogError::TopicNotFound {
        topic: name.to_owned(),
    }
}

/// The topic `name` through any executor.
pub async fn get(db: impl PgExecutor<'_>, name: &str) -> Result<Option<TopicInfo>, LogError> {
    let row: Option<TopicRow> = sqlx::query_as(GET)
        .bind(name)
        .fetch_optional(db)
        .await
        .map_err(|e| LogError::from_sqlx("reading a topic", e))?;
    Ok(row.map(info))
}
