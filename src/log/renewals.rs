//! Lease renewals in batches: every attached durable subscription renews its lease every
//! lease/3, which at thousands of consumers would be thousands of single-row UPDATEs a
//! second. Renewals that arrive while one batch is in flight share the next UPDATE
//! (the same group commit as appends and acks), so the statements per second stay
//! bounded by the database's round trips, not by the number of consumers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{EventLog, LogError, Position, group_reply};
use crate::group::{Flush, reply_channel};

/// Most renewals in one UPDATE.
pub const MAX_RENEWALS: usize = 1000;

/// Extends the leases that are still held by the given owners; returns each renewed
/// consumer's position. A row whose owner differs (the lease was lost) is not touched.
const RENEW_MANY: &str = r#"
UPDATE consumers c
SET lease_expires_at = clock_timestamp() + r.ttl_ms * interval '1 millisecond'
FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::int8[]) AS r(topic, name, owner, ttl_ms)
WHERE c.topic = r.topic AND c.name = r.name AND c.owner = r.owner
RETURNING c.topic, c.name, c.owner, c.committed, c.seek_epoch"#;

type Outcome = Result<Option<Position>, Arc<LogError>>;
type Lease = (String, String, Uuid);

/// One renewal waiting for its batch.
pub struct RenewJob {
    lease: Lease,
    ttl_ms: i64,
    reply: oneshot::Sender<Outcome>,
}

impl EventLog {
    /// Extends `owner`'s lease on the consumer by `ttl` (batched with concurrent
    /// renewals); `None` if `owner` no longer holds it.
    pub async fn renew_lease(
        &self,
        topic: &str,
        name: &str,
        owner: Uuid,
        ttl: Duration,
    ) -> Result<Option<Position>, LogError> {
        let (reply, outcome) = reply_channel();
        let lease = (topic.to_owned(), name.to_owned(), owner);
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let job = RenewJob {
            lease,
            ttl_ms,
            reply,
        };
        self.renewals.submit((), job);
        group_reply(outcome).await
    }
}

/// The grouper's flush: one UPDATE for the batch, then each caller gets its row.
pub fn flush(pool: sqlx::PgPool, jobs: Vec<RenewJob>) -> Flush {
    Box::pin(async move {
        match renew_many(&pool, &jobs).await {
            Ok(mut renewed) => {
                for job in jobs {
                    let position = renewed.remove(&job.lease);
                    let _ = job.reply.send(Ok(position));
                }
            }
            Err(err) => {
                let err = Arc::new(err);
                for job in jobs {
                    let _ = job.reply.send(Err(Arc::clone(&err)));
                }
            }
        }
    })
}

async fn renew_many(
    pool: &sqlx::PgPool,
    jobs: &[RenewJob],
) -> Result<HashMap<Lease, Position>, LogError> {
    let topics: Vec<&str> = jobs.iter().map(|j| j.lease.0.as_str()).collect();
    let names: Vec<&str> = jobs.iter().map(|j| j.lease.1.as_str()).collect();
    let owners: Vec<Uuid> = jobs.iter().map(|j| j.lease.2).collect();
    let ttls: Vec<i64> = jobs.iter().map(|j| j.ttl_ms).collect();
    let rows: Vec<(String, String, Uuid, i64, i64)> = sqlx::query_as(RENEW_MANY)
        .bind(topics)
        .bind(names)
        .bind(owners)
        .bind(ttls)
        .fetch_all(pool)
        .await
        .map_err(|e| LogError::from_sqlx("renewing consumer leases", e))?;
    Ok(rows
        .into_iter()
        .map(|(topic, name, owner, committed, epoch)| {
            let position = Position { committed, epoch };
            ((topic, name, owner), position)
        })
        .collect())
}
