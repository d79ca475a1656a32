//! The gauges that must be true across replicas (topic heads, each durable consumer's
//! committed offset, lag and oldest unacked age), read from PostgreSQL: one query per
//! scrape at most, reused for [`MAX_AGE`] so a scrape storm cannot load the database.
//!
//! The label sets are bounded: the first [`MAX_TOPICS`] topics by name, and of their
//! consumers the first [`MAX_CONSUMERS`] by (topic, name). Above that the rest are not
//! exported; `pulsebus_stored_topics` and `pulsebus_stored_consumers` give the totals,
//! so a dashboard can tell that something was left out.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::Metrics;
use super::labels::{ConsumerLabels, TopicLabel};

/// Most topics whose head is exported.
pub const MAX_TOPICS: i64 = 1000;
/// Most durable consumers whose offsets are exported.
pub const MAX_CONSUMERS: i64 = 5000;
/// How long one read serves scrapes.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// How long a read may take before the scrape goes on with the last values.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Heads and consumers in one round trip. A consumer's oldest unacked record is the one
/// after its committed offset (for shared consumers, `committed` is the low-water mark:
/// one below the oldest unsettled record).
const READ: &str = r#"
WITH t AS (SELECT name, head FROM topics ORDER BY name LIMIT $1),
     c AS (SELECT c.topic, c.name, c.committed FROM consumers c JOIN t ON t.name = c.topic
           ORDER BY c.topic, c.name LIMIT $2)
SELECT t.name, t.head, c.name, c.committed,
       EXTRACT(EPOCH FROM clock_timestamp() - e.appended_at)::float8,
       (SELECT count(*) FROM topics), (SELECT count(*) FROM consumers)
FROM t LEFT JOIN c ON c.topic = t.name
LEFT JOIN events e ON e.topic = c.topic AND e."offset" = c.committed + 1
ORDER BY t.name, c.name"#;

type Row = (
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<f64>,
    i64,
    i64,
);

/// The reader and the time of its last read.
pub struct Stored {
    pool: PgPool,
    last: Mutex<Option<Instant>>,
}

impl Stored {
    /// Reads through `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            last: Mutex::new(None),
        }
    }

    /// Sets the stored gauges of `metrics` unless they were set less than [`MAX_AGE`]
    /// ago. Concurrent scrapes wait for one read instead of each making their own.
    pub async fn refresh(&self, metrics: &Metrics) {
        let mut last = self.last.lock().await;
        if last.is_some_and(|at| at.elapsed() < MAX_AGE) {
            return;
        }
        let read = sqlx::query_as::<_, Row>(READ)
            .bind(MAX_TOPICS)
            .bind(MAX_CONSUMERS)
            .fetch_all(&self.pool);
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(rows)) => set(metrics, rows),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: cannot read heads and consumers");
                metrics.families.stored_read_errors.inc();
            }
            Err(_) => {
                tracing::warn!("metrics: reading heads and consumers timed out");
                metrics.families.stored_read_errors.inc();
            }
        }
        *last = Some(Instant::now());
    }
}

/// Replaces the stored gauges with `rows` (a removed topic or consumer disappears).
fn set(metrics: &Metrics, rows: Vec<Row>) {
    let f = &metrics.families;
    f.topic_head.clear();
    f.committed.clear();
    f.lag.clear();
    f.oldest_unacked_age.clear();
    let (mut topics, mut consumers) = (0, 0);
    for (topic, head, consumer, committed, age, all_topics, all_consumers) in rows {
        (topics, consumers) = (all_topics, all_consumers);
        let label = TopicLabel {
            topic: topic.clone(),
        };
        f.topic_head.get_or_create(&label).set(head);
        let (Some(consumer), Some(committed)) = (consumer, committed) else {
            continue;
        };
        let labels = ConsumerLabels { topic, consumer };
        f.committed.get_or_create(&labels).set(committed);
        f.lag.get_or_create(&labels).set((head - committed).max(0));
        let age = if committed < head {
            age.unwrap_or(0.0)
        } else {
            0.0
        };
        f.oldest_unacked_age
            .get_or_create(&labels)
            .set(age.max(0.0));
    }
    f.stored_topics.set(topics);
    f.stored_consumers.set(consumers);
}
