//! Redelivery for exclusive consumers. A nack asks the attached stream to rewind at
//! `rewind_at`: everything after the committed offset comes again, in order, as after
//! a reconnect, except what is individually acked (`consumers.acked`).
//!
//! Delivery attempts: a record that comes back (the rewind of a nack, a subscriber that
//! left holding it) has its unsettled deliveries counted in `consumers.attempts`. Its
//! next delivery carries that count + 1, and with `max_deliveries` set, a nack of its
//! last allowed attempt (or a delivery past the limit) parks it in the dead-letter topic
//! in the same transaction that settles it, as for shared consumers.

use sqlx::types::Json;

use super::attempts::Attempts;
use super::dead_letters::Parked;
use super::individual_acks::{advance, lock, park};
use super::{ConsumerSettings, EventLog, LogError, Position};

/// What the attached stream of an exclusive consumer needs to redeliver correctly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redelivering {
    /// Records acked individually above the committed offset: not delivered again.
    pub acked: Vec<i64>,
    /// Deliveries of the records that came back.
    pub attempts: Attempts,
    /// Delivery attempts before a record is dead-lettered; 0 is unlimited.
    pub max_deliveries: u32,
}

const STATE: &str =
    "SELECT acked, attempts, max_deliveries FROM consumers WHERE topic = $1 AND name = $2";

/// Forgets the acks at or above the earliest record to redeliver, keeps the parked
/// ones, asks for a rewind at now + `$5` ms (or sooner, if one is already asked for;
/// none when `$5` is NULL) and announces the position and the release.
const NACK: &str = concat!(
    r#"
WITH nacked AS (
    UPDATE consumers
    SET committed = $3, acked = $4,
        updated_at = CASE WHEN $3 > committed THEN clock_timestamp() ELSE updated_at END,
        rewind_at = CASE WHEN $5::int8 IS NULL THEN rewind_at
                         ELSE LEAST(COALESCE(rewind_at, 'infinity'),
                                    clock_timestamp() + $5 * interval '1 millisecond') END
    WHERE topic = $1 AND name = $2
    RETURNING committed, seek_epoch
)
SELECT committed, seek_epoch, "#,
    notify_consumer!("$1", "$2", "committed", "seek_epoch"),
    " IS NULL, ",
    notify_release!("$1", "$2"),
    " IS NULL FROM nacked"
);

const REWIND_AT: &str = "SELECT rewind_at FROM consumers WHERE topic = $1 AND name = $2";

/// What an attached exclusive stream holds of its consumer: whose lease it is, the
/// newest offset it delivered, and how far past the committed offset attempts are kept.
#[derive(Debug, Clone, Copy)]
pub struct HeldBy {
    /// The lease holder (the stream's owner id).
    pub owner: uuid::Uuid,
    /// The newest offset the stream delivered.
    pub last_delivered: i64,
    /// `--max-unsettled`: attempts are kept only this far above the committed offset.
    pub max_unsettled: i64,
}

/// Locks the consumer for its holder `$3`, when a rewind is due (`$4`) or always.
const LOCK_HELD: &str = r#"
SELECT c.committed, c.acked, c.attempts
FROM consumers c
WHERE c.topic = $1 AND c.name = $2 AND c.owner = $3
  AND (NOT $4 OR c.rewind_at <= clock_timestamp())
FOR UPDATE"#;

/// The rewind, by the lease holder: a new seek epoch (the stream restarts after the
/// committed offset, and acks from before are stale), with the counted attempts.
const REWIND: &str = concat!(
    r#"
WITH rewound AS (
    UPDATE consumers SET seek_epoch = seek_epoch + 1, rewind_at = NULL, attempts = $3,
                         updated_at = clock_timestamp()
    WHERE topic = $1 AND name = $2
    RETURNING committed, seek_epoch
)
SELECT committed, seek_epoch, "#,
    notify_consumer!("$1", "$2", "committed", "seek_epoch"),
    " IS NULL AS notified FROM rewound"
);

const COUNT_LEFT: &str = "UPDATE consumers SET attempts = $3 WHERE topic = $1 AND name = $2";

/// A nack of an exclusive consumer, as the caller asked for it.
pub struct ExclusiveNack<'a> {
    pub offsets: &'a [i64],
    /// Unset: the consumer's back-off for the attempt.
    pub delay: Option<std::time::Duration>,
    pub reason: &'a str,
    pub settings: &'a ConsumerSettings,
    pub max_unsettled: i64,
}

impl EventLog {
    /// Nacks records of an exclusive consumer: those on their last allowed attempt go
    /// to the dead-letter topic now (and count as acked); for the rest the attached
    /// stream rewinds after the delay. Returns the consumer's position, `None` when
    /// there is no such exclusive consumer.
    pub async fn nack_exclusive(
        &self,
        topic: &str,
        name: &str,
        nack: ExclusiveNack<'_>,
    ) -> Result<Option<Position>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("starting a nack"))?;
        let Some(locked) = lock(&mut tx, topic, name).await? else {
            return Ok(None);
        };
        let (committed, epoch, acked, head, dlq, Json(attempts)) = locked;
        let plan = plan_nack(&nack, committed, head, &acked, &attempts);
        if plan.parked.is_empty() && plan.retry.is_none() {
            return Ok(Some(Position { committed, epoch }));
        }
        let parked = park(&mut tx, topic, name, &dlq, plan.parked).await?;
        let (low, rest) = advance(committed, &plan.acked, &parked, head, nack.max_unsettled);
        let delay = plan
            .retry
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let (committed, epoch, _, _): (i64, i64, bool, bool) = sqlx::query_as(NACK)
            .bind(topic)
            .bind(name)
            .bind(low)
            .bind(rest)
            .bind(delay)
            .fetch_one(&mut *tx)
            .await
            .map_err(err("nacking"))?;
        tx.commit().await.map_err(err("committing a nack"))?;
        Ok(Some(Position { committed, epoch }))
    }

    /// When a rewind of the consumer is due, if one is asked for.
    pub async fn rewind_at(
        &self,
        topic: &str,
        name: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, LogError> {
        let at: Option<Option<chrono::DateTime<chrono::Utc>>> = sqlx::query_scalar(REWIND_AT)
            .bind(topic)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("reading a rewind", e))?;
        Ok(at.flatten())
    }

    /// Rewinds the consumer if `held.owner` holds it and the rewind is due, counting an
    /// attempt for every record delivered up to `held.last_delivered` and not settled;
    /// returns the new position.
    pub async fn rewind(
        &self,
        topic: &str,
        name: &str,
        held: HeldBy,
    ) -> Result<Option<Position>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("starting a rewind"))?;
        let Some(counted) = count_held(&mut tx, topic, name, held, true).await? else {
            return Ok(None);
        };
        let (committed, epoch, _): (i64, i64, bool) = sqlx::query_as(REWIND)
            .bind(topic)
            .bind(name)
            .bind(Json(counted))
            .fetch_one(&mut *tx)
            .await
            .map_err(err("rewinding"))?;
        tx.commit().await.map_err(err("committing a rewind"))?;
        Ok(Some(Position { committed, epoch }))
    }

    /// A subscriber that leaves holding records (delivered up to `held.last_delivered`,
    /// not settled) counts an attempt for each, while `held.owner` still holds the
    /// consumer.
    pub async fn count_left_behind(
        &self,
        topic: &str,
        name: &str,
        held: HeldBy,
    ) -> Result<(), LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("starting a count"))?;
        let Some(counted) = count_held(&mut tx, topic, name, held, false).await? else {
            return Ok(());
        };
        sqlx::query(COUNT_LEFT)
            .bind(topic)
            .bind(name)
            .bind(Json(counted))
            .execute(&mut *tx)
            .await
            .map_err(err("counting attempts"))?;
        tx.commit().await.map_err(err("committing a count"))
    }

    /// The consumer's individual acks and attempts, for its attached stream.
    pub async fn redelivering(&self, topic: &str, name: &str) -> Result<Redelivering, LogError> {
        let row: Option<(Vec<i64>, Json<Attempts>, i32)> = sqlx::query_as(STATE)
            .bind(topic)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("reading a consumer's redeliveries", e))?;
        Ok(
            row.map_or_else(Redelivering::default, |(acked, Json(attempts), max)| {
                Redelivering {
                    acked,
                    attempts,
                    max_deliveries: u32::try_from(max).unwrap_or(0),
                }
            }),
        )
    }
}

/// Locks the consumer for its holder (only when a rewind is due, with `due`) and
/// returns its attempts with one more for each record that came back.
async fn count_held(
    tx: &mut sqlx::PgConnection,
    topic: &str,
    name: &str,
    held: HeldBy,
    due: bool,
) -> Result<Option<Attempts>, LogError> {
    let row: Option<(i64, Vec<i64>, Json<Attempts>)> = sqlx::query_as(LOCK_HELD)
        .bind(topic)
        .bind(name)
        .bind(held.owner)
        .bind(due)
        .fetch_optional(tx)
        .await
        .map_err(|e| LogError::from_sqlx("locking a consumer", e))?;
    Ok(row.map(|(committed, acked, Json(attempts))| {
        let limit = committed.saturating_add(held.max_unsettled);
        attempts.came_back(committed, held.last_delivered, &acked, limit)
    }))
}

/// What a nack does: records to park now, the acks that stay, and the delay of the
/// rewind for the rest (`None`: nothing to redeliver).
struct NackPlan {
    parked: Vec<Parked>,
    acked: Vec<i64>,
    retry: Option<std::time::Duration>,
}

fn plan_nack(
    nack: &ExclusiveNack<'_>,
    committed: i64,
    head: i64,
    acked: &[i64],
    attempts: &Attempts,
) -> NackPlan {
    let max = nack.settings.max_deliveries;
    let mut nacked: Vec<i64> = nack
        .offsets
        .iter()
        .copied()
        .filter(|&o| o > committed && o <= head)
        .collect();
    nacked.sort_unstable();
    nacked.dedup();
    let (last, retry): (Vec<i64>, Vec<i64>) = nacked
        .into_iter()
        .partition(|&o| max > 0 && attempts.next_attempt(o) >= max);
    let parked = last
        .into_iter()
        .map(|offset| Parked {
            offset,
            attempts: i32::try_from(attempts.next_attempt(offset)).unwrap_or(i32::MAX),
            reason: format!(
                "{}; {} deliveries made",
                nack.reason,
                attempts.next_attempt(offset)
            ),
        })
        .collect();
    let first = retry.first().copied();
    let acked = acked
        .iter()
        .copied()
        .filter(|&o| first.is_none_or(|f| o < f))
        .collect();
    let retry = first.map(|f| {
        nack.delay
            .unwrap_or_else(|| nack.settings.backoff(attempts.next_attempt(f)))
    });
    NackPlan {
        parked,
        acked,
        retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts(pairs: &[(i64, u32)]) -> Attempts {
        Attempts::from_pairs(pairs)
    }

    /// Records delivered and not settled count one more attempt; settled ones, and
    /// what is committed or past the bound, are forgotten.
    #[test]
    fn records_that_come_back_count_one_more_attempt() {
        let counted = attempts(&[(2, 1), (3, 2)]).came_back(2, 6, &[5], 5);
        assert_eq!(counted, attempts(&[(3, 3), (4, 1)]));
        assert_eq!(counted.next_attempt(3), 4);
        assert_eq!(counted.next_attempt(9), 1);
        assert!(counted.exhausted(3, 3));
        assert!(!counted.exhausted(3, 0));
        assert!(!counted.exhausted(4, 3));
    }

    /// A nack parks the records on their last allowed attempt, keeps only the acks
    /// before the first record to redeliver, and waits the back-off of its attempt.
    #[test]
    fn a_nack_parks_the_last_attempts_and_rewinds_to_the_first_other() {
        let settings = ConsumerSettings {
            max_deliveries: 3,
            ..ConsumerSettings::default()
        };
        let nack = ExclusiveNack {
            offsets: &[9, 4, 6, 4, 20],
            delay: None,
            reason: "boom",
            settings: &settings,
            max_unsettled: 100,
        };
        let plan = plan_nack(&nack, 3, 10, &[5, 7, 8], &attempts(&[(4, 2), (6, 1)]));
        assert_eq!(plan.parked.len(), 1);
        assert_eq!(plan.parked[0].offset, 4);
        assert_eq!(plan.parked[0].attempts, 3);
        assert_eq!(plan.parked[0].reason, "boom; 3 deliveries made");
        assert_eq!(plan.acked, vec![5]);
        assert_eq!(plan.retry, Some(settings.backoff(2)));
    }
}
