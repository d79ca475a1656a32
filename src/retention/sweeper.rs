//! The sweep: every `--retention-interval`, the replica that gets the advisory lock
//! goes over the topics that have a retention limit, a page of names at a time, and
//! removes each one's old events in batches of `--retention-batch-events` until a
//! batch finds nothing more to remove. Consumers that lose records they had not
//! committed are logged (topic, consumer, from, to), as Kafka's
//! `auto.offset.reset=earliest` would reset them.

use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::LOCK_KEY;
use crate::config::RetentionConfig;
use crate::log::LogError;
use crate::log::retention::{self, Batch, Removed};
use crate::tasks::Tasks;

/// Topic names read per page of a sweep (bounds the sweep's memory).
const TOPICS_PER_PAGE: i64 = 100;

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sweep {
    /// Topics that lost events.
    pub topics: u64,
    /// Events removed.
    pub events: i64,
}

/// Runs the sweeper on `tasks` unless `--retention-interval` is 0.
pub fn spawn(pool: PgPool, config: RetentionConfig, tasks: &Tasks) {
    if config.retention_interval.is_zero() {
        tracing::info!("retention sweeping is off on this server (--retention-interval 0)");
        return;
    }
    tasks.spawn(run(pool, config, tasks.token()));
}

async fn run(pool: PgPool, config: RetentionConfig, token: CancellationToken) {
    let mut tick = tokio::time::interval(config.retention_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Cancelling mid-sweep drops the dedicated connection, which frees the lock.
        let outcome = tokio::select! {
            () = token.cancelled() => return,
            outcome = sweep_once(&pool, &config) => outcome,
        };
        match outcome {
            Ok(Some(sweep)) if sweep.events > 0 => {
                tracing::info!(
                    topics = sweep.topics,
                    events = sweep.events,
                    "retention removed events"
                );
            }
            Ok(Some(_)) => {}
            Ok(None) => tracing::debug!("another replica is sweeping; skipped"),
            Err(error) => {
                tracing::warn!(%error, "retention sweep failed; trying again next interval");
            }
        }
    }
}

/// One sweep over every topic with a retention limit, on a connection of its own
/// holding the advisory lock; `None` when another replica holds it.
pub async fn sweep_once(
    pool: &PgPool,
    config: &RetentionConfig,
) -> Result<Option<Sweep>, LogError> {
    let options = pool.connect_options().as_ref().clone();
    let mut conn = options
        .connect()
        .await
        .map_err(|e| LogError::from_sqlx("connecting for retention", e))?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| LogError::from_sqlx("taking the retention lock", e))?;
    let outcome = if locked {
        sweep_topics(&mut conn, config).await.map(Some)
    } else {
        Ok(None)
    };
    // Closing the session releases the lock (also when this fails or is dropped).
    let _ = conn.close().await;
    outcome
}

async fn sweep_topics(
    conn: &mut PgConnection,
    config: &RetentionConfig,
) -> Result<Sweep, LogError> {
    let batch = Batch {
        max_events: config.retention_batch_events,
        consumer_hold: config.retention_consumer_hold,
    };
    let mut sweep = Sweep::default();
    let mut after: Option<String> = None;
    loop {
        let topics =
            retention::topics_with_retention(&mut *conn, after.as_deref(), TOPICS_PER_PAGE).await?;
        for topic in &topics {
            let events = sweep_topic(conn, topic, batch).await?;
            if events > 0 {
                sweep.topics += 1;
                sweep.events += events;
            }
        }
        if (topics.len() as i64) < TOPICS_PER_PAGE {
            return Ok(sweep);
        }
        after = topics.last().cloned();
    }
}

/// Removes batches of `topic` until one comes back short; returns the events removed.
async fn sweep_topic(conn: &mut PgConnection, topic: &str, batch: Batch) -> Result<i64, LogError> {
    let mut total = 0;
    loop {
        let Some(removed) = retention::remove_batch(&mut *conn, topic, batch).await? else {
            return Ok(total);
        };
        report(topic, &removed);
        total += removed.events;
        if removed.events < batch.max_events {
            return Ok(total);
        }
    }
}

fn report(topic: &str, removed: &Removed) {
    for skip in &removed.skipped {
        tracing::warn!(
            topic,
            consumer = %skip.consumer,
            from = skip.from,
            to = skip.to,
            "retention removed records this consumer had not committed (older than \
             --retention-consumer-hold); it continues from the first retained offset"
        );
    }
    if removed.events > 0 {
        tracing::debug!(
            topic,
            events = removed.events,
            first_offset = removed.first_offset,
            "retention batch"
        );
    }
}
