//! Settling records (acks), giving them back for redelivery (nacks, expired
//! deadlines) and parking them as dead letters; key-shared, a settled record frees the
//! next one of its subject.

use sqlx::PgConnection;

use super::super::LogError;
use super::super::dead_letters::{self, Parked};
use super::super::settings::millis;
use super::{Redelivery, Turn, failed};
use crate::metrics::RedeliveryReason;

/// Rows back to waiting, each until now + its delay (ms), with a reason.
const WAIT: &str = r#"
UPDATE deliveries d SET owner = NULL, due_at = clock_timestamp() + u.ms * interval '1 millisecond',
       reason = $5
FROM UNNEST($3::int8[], $4::int8[]) AS u(o, ms)
WHERE d.topic = $1 AND d.consumer = $2 AND d."offset" = u.o"#;

/// Rows settled (delivered at least once; blocked rows are not the caller's to settle);
/// returns their subjects.
const SETTLE: &str = r#"DELETE FROM deliveries
WHERE topic = $1 AND consumer = $2 AND "offset" = ANY($3::int8[]) AND attempts > 0
RETURNING subject"#;

/// Key-shared: the first unsettled record of each of these subjects is no longer
/// blocked (the one before it settled).
const UNBLOCK: &str = r#"
UPDATE deliveries d SET blocked = false
FROM (SELECT DISTINCT ON (e.subject) e."offset" FROM deliveries e
      WHERE e.topic = $1 AND e.consumer = $2 AND e.subject = ANY($3::text[])
      ORDER BY e.subject, e."offset") AS first
WHERE d.topic = $1 AND d.consumer = $2 AND d."offset" = first."offset" AND d.blocked"#;

/// Delivered rows among `$3`, with their attempts.
pub(super) const DELIVERED: &str = r#"SELECT "offset", attempts FROM deliveries
WHERE topic = $1 AND consumer = $2 AND "offset" = ANY($3::int8[]) AND attempts > 0"#;

impl Turn {
    /// Puts delivered rows back to waiting, or dead-letters those out of attempts.
    pub(super) async fn give_back(
        &mut self,
        rows: &[(i64, i32)],
        redelivery: Redelivery<'_>,
        why: RedeliveryReason,
    ) -> Result<(), LogError> {
        let max = i64::from(self.settings.max_deliveries);
        let out_of_attempts = |attempts: i32| max > 0 && i64::from(attempts) >= max;
        let (reason, delay) = match redelivery {
            Redelivery::After(delay, reason) => (reason, delay),
            Redelivery::DeadLetter(reason) => (reason, None),
        };
        let (mut parked, waiting): (Vec<Parked>, Vec<(i64, i64)>) = rows.iter().fold(
            (Vec::new(), Vec::new()),
            |(mut parked, mut waiting), &(offset, attempts)| {
                if matches!(redelivery, Redelivery::DeadLetter(_)) || out_of_attempts(attempts) {
                    let reason = match redelivery {
                        Redelivery::DeadLetter(r) => r.to_owned(),
                        Redelivery::After(..) => format!("{reason}; {attempts} deliveries made"),
                    };
                    parked.push(Parked {
                        offset,
                        attempts,
                        reason,
                    });
                } else {
                    let wait = delay.unwrap_or_else(|| self.settings.backoff(attempts as u32));
                    waiting.push((offset, millis(wait)));
                }
                (parked, waiting)
            },
        );
        if !waiting.is_empty() {
            self.given_back.push((why, waiting.len() as u64));
            let (offsets, ms): (Vec<i64>, Vec<i64>) = waiting.into_iter().unzip();
            sqlx::query(WAIT)
                .bind(&self.topic)
                .bind(&self.consumer)
                .bind(offsets)
                .bind(ms)
                .bind(reason)
                .execute(&mut *self.tx)
                .await
                .map_err(failed("scheduling redeliveries"))?;
        }
        self.park(&mut parked).await
    }

    /// Dead-letters `parked` and removes their rows.
    pub(super) async fn park(&mut self, parked: &mut [Parked]) -> Result<(), LogError> {
        if parked.is_empty() {
            return Ok(());
        }
        let dlq = self.settings.dead_letter_topic_of(&self.topic);
        let (topic, consumer) = (self.topic.clone(), self.consumer.clone());
        let conn: &mut PgConnection = &mut self.tx;
        self.dead_lettered += dead_letters::append(conn, &topic, &consumer, &dlq, parked).await?;
        let offsets: Vec<i64> = parked.iter().map(|p| p.offset).collect();
        self.settle(&offsets).await.map(drop)
    }

    /// Removes settled rows; key-shared, the next record of each of their subjects is
    /// unblocked. Returns how many records were unblocked.
    pub(super) async fn settle(&mut self, offsets: &[i64]) -> Result<u64, LogError> {
        let subjects: Vec<String> = sqlx::query_scalar(SETTLE)
            .bind(&self.topic)
            .bind(&self.consumer)
            .bind(offsets)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(failed("settling records"))?;
        let subjects: Vec<String> = subjects.into_iter().filter(|s| !s.is_empty()).collect();
        if subjects.is_empty() || self.settings.mode != super::super::DeliveryMode::KeyShared {
            return Ok(0);
        }
        let unblocked = sqlx::query(UNBLOCK)
            .bind(&self.topic)
            .bind(&self.consumer)
            .bind(subjects)
            .execute(&mut *self.tx)
            .await
            .map_err(failed("unblocking subjects"))?;
        Ok(unblocked.rows_affected())
    }
}
