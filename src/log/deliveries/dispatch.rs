//! Handing out records: what expired goes back to waiting, then due waiting records
//! and new ones are handed to the asking subscription, within its room and the
//! consumer's window; key-shared records whose subject is busy get a blocked row.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::super::settings::millis;
use super::super::{DeliveryMode, LogError};
use super::{DispatchRequest, Held, Redelivery, Turn, failed};
use crate::metrics::RedeliveryReason;

/// Records a new scan of the log may look at in one dispatch.
const SCAN_LIMIT: i64 = 1000;

/// Held rows whose deadline passed.
const EXPIRED: &str = r#"SELECT "offset", attempts FROM deliveries
WHERE topic = $1 AND consumer = $2 AND owner IS NOT NULL AND due_at < clock_timestamp()"#;

/// Hands due, unblocked waiting rows to `$3` until its deadline (`$5` ms), at most `$4`.
const TAKE_WAITING: &str = r#"
WITH due AS (
    SELECT d."offset" FROM deliveries d
    WHERE d.topic = $1 AND d.consumer = $2 AND d.owner IS NULL AND NOT d.blocked
      AND d.due_at <= clock_timestamp()
    ORDER BY d."offset" LIMIT $4
)
UPDATE deliveries d
SET owner = $3, due_at = clock_timestamp() + $5 * interval '1 millisecond',
    attempts = d.attempts + 1, first_delivered_at = COALESCE(d.first_delivered_at, clock_timestamp())
FROM due WHERE d.topic = $1 AND d.consumer = $2 AND d."offset" = due."offset"
RETURNING d."offset", d.attempts"#;

const NEW_RECORDS: &str = r#"SELECT "offset", subject FROM events
WHERE topic = $1 AND "offset" > $2 AND "offset" <= $3 ORDER BY "offset" LIMIT $4"#;

/// Subjects among `$3` with an unsettled row.
const BUSY_SUBJECTS: &str = r#"SELECT DISTINCT subject FROM deliveries
WHERE topic = $1 AND consumer = $2 AND subject = ANY($3::text[]) AND subject <> ''"#;

/// New rows: attempts 1 are held by `$3` until `$4` ms from now; attempts 0 are blocked
/// behind an earlier record of their subject.
const INSERT: &str = r#"
INSERT INTO deliveries (topic, consumer, "offset", subject, attempts, blocked, owner, due_at,
                        first_delivered_at)
SELECT $1, $2, u.o, u.s, u.a, u.a = 0, CASE WHEN u.a = 1 THEN $3::uuid END,
       clock_timestamp() + CASE WHEN u.a = 1 THEN $4 ELSE 0 END * interval '1 millisecond',
       CASE WHEN u.a = 1 THEN clock_timestamp() END
FROM UNNEST($5::int8[], $6::text[], $7::int4[]) AS u(o, s, a)"#;

/// How many records `$3` holds now.
pub(super) const HELD_BY: &str =
    "SELECT count(*) FROM deliveries WHERE topic = $1 AND consumer = $2 AND owner = $3";

/// When to dispatch again: the earliest deadline of a held row, or due time of an
/// unblocked waiting row.
const NEXT_DUE: &str = r#"SELECT min(due_at) FROM deliveries
WHERE topic = $1 AND consumer = $2 AND NOT blocked"#;

impl Turn {
    /// Held rows past their deadline wait for redelivery (or are dead-lettered).
    pub(super) async fn expire(&mut self) -> Result<(), LogError> {
        let rows: Vec<(i64, i32)> = sqlx::query_as(EXPIRED)
            .bind(&self.topic)
            .bind(&self.consumer)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(failed("finding expired deliveries"))?;
        let deadline = Redelivery::After(None, "ack deadline passed");
        self.give_back(&rows, deadline, RedeliveryReason::Deadline)
            .await
    }

    pub(super) async fn held_by(&mut self, owner: Uuid) -> Result<usize, LogError> {
        let (topic, consumer) = (self.topic.clone(), self.consumer.clone());
        let count: i64 = sqlx::query_scalar(HELD_BY)
            .bind(topic)
            .bind(consumer)
            .bind(owner)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(failed("counting held records"))?;
        Ok(count as usize)
    }

    /// Hands up to `budget` eligible waiting rows to the subscriber.
    pub(super) async fn take_waiting(
        &mut self,
        req: &DispatchRequest<'_>,
        budget: usize,
    ) -> Result<Vec<Held>, LogError> {
        if budget == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, i32)> = sqlx::query_as(TAKE_WAITING)
            .bind(&self.topic)
            .bind(&self.consumer)
            .bind(req.owner)
            .bind(budget as i64)
            .bind(millis(self.settings.ack_deadline))
            .fetch_all(&mut *self.tx)
            .await
            .map_err(failed("redelivering records"))?;
        self.redelivered += rows.iter().filter(|(_, a)| *a > 1).count() as i64;
        Ok(rows
            .into_iter()
            .map(|(offset, attempts)| Held {
                offset,
                attempt: attempts as u32,
            })
            .collect())
    }

    /// Hands out up to `budget` records never handed out before (below `window_end`);
    /// key-shared records whose subject is busy get a blocked row instead. Also says
    /// whether the scan saw everything there was (not cut by its limit).
    pub(super) async fn take_new(
        &mut self,
        req: &DispatchRequest<'_>,
        budget: usize,
        window_end: i64,
    ) -> Result<(Vec<Held>, bool), LogError> {
        // Only key-shared needs to look past the budget (for records of free subjects
        // behind blocked ones); a shared dispatch reads just what it hands out.
        let key_shared = self.settings.mode == DeliveryMode::KeyShared;
        let wanted = if key_shared {
            SCAN_LIMIT
        } else {
            budget as i64
        };
        let scan = wanted.min(SCAN_LIMIT).min(window_end - self.dispatched);
        let records: Vec<(i64, String)> = sqlx::query_as(NEW_RECORDS)
            .bind(&self.topic)
            .bind(self.dispatched)
            .bind(window_end)
            .bind(scan)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(failed("reading new records"))?;
        let scanned_all = (records.len() as i64) < scan;
        let mut busy = self.busy_subjects(&records).await?;
        let (mut rows, mut held) = (Vec::new(), Vec::new());
        for (offset, subject) in records {
            if held.len() >= budget {
                break;
            }
            let blocked = key_shared && !subject.is_empty() && !busy.insert(subject.clone());
            if !blocked {
                held.push(Held { offset, attempt: 1 });
            }
            self.dispatched = offset;
            rows.push((offset, subject, if blocked { 0 } else { 1 }));
        }
        if !rows.is_empty() {
            self.insert(req, rows).await?;
        }
        Ok((held, scanned_all))
    }

    pub(super) async fn busy_subjects(
        &mut self,
        records: &[(i64, String)],
    ) -> Result<std::collections::HashSet<String>, LogError> {
        if self.settings.mode != DeliveryMode::KeyShared {
            return Ok(Default::default());
        }
        let subjects: Vec<&str> = records.iter().map(|(_, s)| s.as_str()).collect();
        let busy: Vec<(String,)> = sqlx::query_as(BUSY_SUBJECTS)
            .bind(&self.topic)
            .bind(&self.consumer)
            .bind(subjects)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(failed("reading busy subjects"))?;
        Ok(busy.into_iter().map(|(s,)| s).collect())
    }

    pub(super) async fn insert(
        &mut self,
        req: &DispatchRequest<'_>,
        rows: Vec<(i64, String, i32)>,
    ) -> Result<(), LogError> {
        let mut offsets = Vec::with_capacity(rows.len());
        let mut subjects = Vec::with_capacity(rows.len());
        let mut attempts = Vec::with_capacity(rows.len());
        for (o, s, a) in rows {
            offsets.push(o);
            subjects.push(s);
            attempts.push(a);
        }
        sqlx::query(INSERT)
            .bind(&self.topic)
            .bind(&self.consumer)
            .bind(req.owner)
            .bind(millis(self.settings.ack_deadline))
            .bind(offsets)
            .bind(subjects)
            .bind(attempts)
            .execute(&mut *self.tx)
            .await
            .map_err(failed("recording deliveries"))?;
        Ok(())
    }

    pub(super) async fn next_due(&mut self) -> Result<Option<DateTime<Utc>>, LogError> {
        sqlx::query_scalar(NEXT_DUE)
            .bind(&self.topic)
            .bind(&self.consumer)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(failed("reading due deliveries"))
    }
}
