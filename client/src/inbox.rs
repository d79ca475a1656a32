//! Exactly-once effects for handlers that write to their own PostgreSQL (feature
//! `inbox`). Delivery is at least once: a record can come again after a crash, a lost
//! ack or a redelivery. [`Inbox::begin`] opens a transaction in the handler's database
//! and records the event's id in it; the handler does its writes in the same
//! transaction and commits. A redelivered event finds its id already there and gets
//! `None`: the handler acks it without doing anything again. The id and the effects
//! commit together or not at all.
//!
//! ```no_run
//! # async fn handle(pool: sqlx::PgPool, record: pulsebus_client::proto::pulsebus::v1::Record) -> Result<(), sqlx::Error> {
//! let inbox = pulsebus_client::inbox::Inbox::new(pool, "notifications").await?;
//! if let Some(mut tx) = inbox.begin(&record).await? {
//!     sqlx::query("INSERT INTO notifications (student_id, text) VALUES ($1, $2)")
//!         .bind("s-1")
//!         .bind("You earned a badge")
//!         .execute(&mut *tx)
//!         .await?;
//!     tx.commit().await?;
//! } // else: handled before; ack it again
//! # Ok(()) }
//! ```
//!
//! The table `pulsebus_inbox` holds one row per handled event and consumer;
//! [`Inbox::prune`] removes rows older than the longest a redelivery can come late
//! (the retention of the topic, or a few days), so it stays bounded.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};

use crate::proto::pulsebus::v1::Record;

const CREATE: &str = r#"
CREATE TABLE IF NOT EXISTS pulsebus_inbox (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    topic        TEXT NOT NULL,
    "offset"     BIGINT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
)"#;

const CLAIM: &str = r#"
INSERT INTO pulsebus_inbox (consumer, event_id, topic, "offset") VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING"#;

const PRUNE: &str = "DELETE FROM pulsebus_inbox WHERE consumer = $1 AND processed_at < now() - $2 * interval '1 millisecond'";

/// Runs `ddl` (a `CREATE ... IF NOT EXISTS`) under a transaction-scoped advisory lock:
/// instances starting together would otherwise race on the catalog (a unique violation
/// in `pg_type`). For the handler's own tables too.
pub async fn create_once(pool: &PgPool, ddl: &'static str) -> Result<(), sqlx::Error> {
    const LOCK: i64 = 0x7075_6c73_6562_7573; // "pulsebus"
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(ddl).execute(&mut *tx).await?;
    tx.commit().await
}

/// The processed-event ids of one consumer, in the handler's own database.
#[derive(Debug, Clone)]
pub struct Inbox {
    pool: PgPool,
    consumer: String,
}

impl Inbox {
    /// The inbox of `consumer` (its table is created if missing).
    pub async fn new(pool: PgPool, consumer: impl Into<String>) -> Result<Self, sqlx::Error> {
        create_once(&pool, CREATE).await?;
        Ok(Self {
            pool,
            consumer: consumer.into(),
        })
    }

    /// A transaction that has recorded `record`'s event as processed, or `None` when it
    /// was processed before (then do nothing, and ack). Two deliveries racing on two
    /// workers cannot both get a transaction: the second waits on the first's row and
    /// gets `None` once it commits (or the transaction if it rolls back).
    pub async fn begin(
        &self,
        record: &Record,
    ) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
        let id = record
            .event
            .as_ref()
            .map(|e| e.id.as_str())
            .unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(CLAIM)
            .bind(&self.consumer)
            .bind(id)
            .bind(&record.topic)
            .bind(record.offset)
            .execute(&mut *tx)
            .await?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(tx))
    }

    /// Whether `record`'s event was processed (committed) before.
    pub async fn was_processed(&self, record: &Record) -> Result<bool, sqlx::Error> {
        let id = record
            .event
            .as_ref()
            .map(|e| e.id.as_str())
            .unwrap_or_default();
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM pulsebus_inbox WHERE consumer = $1 AND event_id = $2",
        )
        .bind(&self.consumer)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Forgets ids processed more than `older_than` ago; returns how many.
    pub async fn prune(&self, older_than: Duration) -> Result<u64, sqlx::Error> {
        let ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let done = sqlx::query(PRUNE)
            .bind(&self.consumer)
            .bind(ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
