//! Individual acks and nacks of exclusive consumers: one process may work on many
//! records at once and ack them out of order. Offsets acked above the committed offset
//! wait in `consumers.acked` until the records before them are acked; the committed
//! offset is the low-water mark, moved over every consecutive run. Nacks and rewinds
//! are in `rewinds`.

use std::collections::BTreeSet;

use sqlx::types::Json;

use super::attempts::Attempts;
use super::dead_letters::{self, Parked};
use super::{EventLog, LogError, Position};

const LOCK: &str = r#"
SELECT c.committed, c.seek_epoch, c.acked, t.head, c.dead_letter_topic, c.attempts
FROM consumers c JOIN topics t ON t.name = c.topic
WHERE c.topic = $1 AND c.name = $2 AND c.mode = 1
FOR UPDATE OF c"#;

const COUNT_DEAD: &str =
    "UPDATE consumers SET dead_lettered = dead_lettered + $3 WHERE topic = $1 AND name = $2";

/// What the lock read.
pub(super) type Locked = (i64, i64, Vec<i64>, i64, String, Json<Attempts>);

const STORE: &str = concat!(
    r#"
WITH stored AS (
    UPDATE consumers
    SET committed = $3, acked = $4,
        updated_at = CASE WHEN $3 > committed THEN clock_timestamp() ELSE updated_at END
    WHERE topic = $1 AND name = $2
    RETURNING committed, seek_epoch
)
SELECT committed, seek_epoch, "#,
    notify_consumer!("$1", "$2", "committed", "seek_epoch"),
    " IS NULL AS notified FROM stored"
);

/// The low-water mark after acking `offsets` individually: `acked` and the new offsets
/// (those above `committed`, at most `head`, within `max_unsettled` of `committed`)
/// merged, and `committed` moved over the consecutive run after it. Returns the new
/// committed offset and what stays acked above it.
pub(super) fn advance(
    committed: i64,
    acked: &[i64],
    offsets: &[i64],
    head: i64,
    max_unsettled: i64,
) -> (i64, Vec<i64>) {
    let limit = head.min(committed.saturating_add(max_unsettled));
    let mut set: BTreeSet<i64> = acked
        .iter()
        .chain(offsets)
        .copied()
        .filter(|&o| o > committed && o <= limit)
        .collect();
    let mut low = committed;
    while set.remove(&(low + 1)) {
        low += 1;
    }
    (low, set.into_iter().collect())
}

impl EventLog {
    /// Acks records of an exclusive consumer one by one (with `epoch`, an ack from an
    /// older seek epoch moves nothing). `None` when there is no such exclusive consumer.
    pub async fn ack_exclusive_records(
        &self,
        topic: &str,
        name: &str,
        offsets: &[i64],
        epoch: Option<i64>,
        max_unsettled: i64,
    ) -> Result<Option<Position>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("starting an ack"))?;
        let row = lock(&mut tx, topic, name).await?;
        let Some((committed, seek_epoch, acked, head, _, _)) = row else {
            return Ok(None);
        };
        if epoch.is_some_and(|e| e < seek_epoch) {
            return Ok(Some(Position {
                committed,
                epoch: seek_epoch,
            }));
        }
        let (low, rest) = advance(committed, &acked, offsets, head, max_unsettled);
        let position = store(&mut tx, topic, name, low, rest).await?;
        tx.commit().await.map_err(err("committing an ack"))?;
        Ok(Some(position))
    }

    /// Parks records of an exclusive consumer in its dead-letter topic and counts them
    /// as acked, in one transaction. `None` when there is no such exclusive consumer.
    pub async fn dead_letter_exclusive(
        &self,
        topic: &str,
        name: &str,
        offsets: &[i64],
        reason: &str,
        max_unsettled: i64,
    ) -> Result<Option<Position>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(err("starting a dead letter"))?;
        let row = lock(&mut tx, topic, name).await?;
        let Some((committed, _, acked, head, dead_letter_topic, attempts)) = row else {
            return Ok(None);
        };
        let parked: Vec<Parked> = offsets
            .iter()
            .filter(|&&o| o > committed && o <= head && !acked.contains(&o))
            .map(|&offset| Parked {
                offset,
                attempts: attempts.0.next_attempt(offset) as i32,
                reason: reason.to_owned(),
            })
            .collect();
        let parked = park(&mut tx, topic, name, &dead_letter_topic, parked).await?;
        let (low, rest) = advance(committed, &acked, &parked, head, max_unsettled);
        let position = store(&mut tx, topic, name, low, rest).await?;
        tx.commit().await.map_err(err("committing a dead letter"))?;
        self.metrics.dead_lettered(topic, name, parked.len() as u64);
        Ok(Some(position))
    }
}

/// Appends `parked` records to the consumer's dead-letter topic (`dlq`; empty means
/// `<topic>.dlq`) and counts them; returns their offsets, which the caller settles in the
/// same transaction.
pub(super) async fn park(
    tx: &mut sqlx::PgConnection,
    topic: &str,
    name: &str,
    dlq: &str,
    mut parked: Vec<Parked>,
) -> Result<Vec<i64>, LogError> {
    let dlq = match dlq {
        "" => format!("{topic}.dlq"),
        other => other.to_owned(),
    };
    let count = dead_letters::append(&mut *tx, topic, name, &dlq, &mut parked).await?;
    sqlx::query(COUNT_DEAD)
        .bind(topic)
        .bind(name)
        .bind(count)
        .execute(&mut *tx)
        .await
        .map_err(|e| LogError::from_sqlx("counting dead letters", e))?;
    Ok(parked.iter().map(|p| p.offset).collect())
}

/// Locks an exclusive consumer's row; `None` when there is no such consumer.
pub(super) async fn lock(
    tx: &mut sqlx::PgConnection,
    topic: &str,
    name: &str,
) -> Result<Option<Locked>, LogError> {
    sqlx::query_as(LOCK)
        .bind(topic)
        .bind(name)
        .fetch_optional(tx)
        .await
        .map_err(|e| LogError::from_sqlx("locking a consumer", e))
}

/// Stores the low-water mark and what stays acked above it, and announces it.
pub(super) async fn store(
    tx: &mut sqlx::PgConnection,
    topic: &str,
    name: &str,
    low: i64,
    rest: Vec<i64>,
) -> Result<Position, LogError> {
    let (committed, epoch, _): (i64, i64, bool) = sqlx::query_as(STORE)
        .bind(topic)
        .bind(name)
        .bind(low)
        .bind(rest)
        .fetch_one(tx)
        .await
        .map_err(|e| LogError::from_sqlx("storing individual acks", e))?;
    Ok(Position { committed, epoch })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Out-of-order acks wait above the low-water mark, which moves over each run;
    /// offsets at or below it, past the head, or beyond the bound are dropped.
    #[test]
    fn the_low_water_mark_moves_over_consecutive_acks_only() {
        assert_eq!(advance(0, &[], &[3, 2], 10, 100), (0, vec![2, 3]));
        assert_eq!(advance(0, &[2, 3], &[1], 10, 100), (3, vec![]));
        assert_eq!(advance(3, &[], &[5, 4, 7], 10, 100), (5, vec![7]));
        assert_eq!(advance(5, &[7], &[2, 11], 10, 100), (5, vec![7]));
        assert_eq!(advance(0, &[], &[50, 1], 100, 10), (1, vec![]));
    }
}
