//! Shared and key-shared consumers in PostgreSQL: which records are held by which
//! subscriber until when, which wait for redelivery, and the low-water mark.
//!
//! Every change runs in a transaction that first locks the consumer's row, so the
//! subscribers of one consumer on every replica take turns: a record is handed to one
//! subscriber at a time, and a dead letter is written once. A record's row lives from
//! its first delivery (or, key-shared, from when it was found blocked behind its
//! subject) until it is settled; `committed` is one below the lowest row, or
//! `dispatched` when there is none.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::dead_letters::{self, Parked};
use super::settings::{ConsumerSettings, SettingsRow, millis};
use super::{EventLog, LogError, Position};

/// A record handed to a subscriber: its offset and which delivery this is (1, 2, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The record's offset.
    pub offset: i64,
    /// 1 on the first delivery.
    pub attempt: u32,
}

/// What one dispatch handed out, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dispatch {
    /// The records now held by the subscriber, in offset order.
    pub held: Vec<Held>,
    /// The earliest time a held record's deadline passes or a waiting record becomes
    /// due (a reason to dispatch again even if nothing else happens).
    pub next_due: Option<DateTime<Utc>>,
    /// The consumer has `max_unsettled` records between its low-water mark and its
    /// dispatch point: nothing new is handed out until the oldest settle.
    pub window_full: bool,
    /// How many records the subscription holds now (including `held`).
    pub holding: usize,
    /// The scan stopped at its limit with room left: dispatch again at once.
    pub more: bool,
}

/// A dispatch request.
#[derive(Debug, Clone, Copy)]
pub struct DispatchRequest<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The shared consumer.
    pub consumer: &'a str,
    /// The subscription asking.
    pub owner: Uuid,
    /// Most records the subscription may hold at once.
    pub max_in_flight: usize,
    /// Most records between the low-water mark and the dispatch point.
    pub max_unsettled: i64,
}

/// Records a new scan of the log may look at in one dispatch.
const SCAN_LIMIT: i64 = 1000;

#[derive(sqlx::FromRow)]
struct Locked {
    committed: i64,
    dispatched: i64,
    #[sqlx(flatten)]
    settings: SettingsRow,
}

const LOCK: &str = "SELECT committed, dispatched, mode, ack_deadline_ms, max_deliveries, \
     min_backoff_ms, max_backoff_ms, dead_letter_topic \
     FROM consumers WHERE topic = $1 AND name = $2 FOR UPDATE";

/// Held rows whose deadline passed.
const EXPIRED: &str = r#"SELECT "offset", attempts FROM deliveries
WHERE topic = $1 AND consumer = $2 AND owner IS NOT NULL AND due_at < clock_timestamp()"#;

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
const DELIVERED: &str = r#"SELECT "offset", attempts FROM deliveries
WHERE topic = $1 AND consumer = $2 AND "offset" = ANY($3::int8[]) AND attempts > 0"#;

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

/// Moves the dispatch point and the low-water mark; counts redeliveries and dead letters.
const ADVANCE: &str = r#"
UPDATE consumers c
SET dispatched = GREATEST(c.dispatched, $3),
    redelivered = c.redelivered + $4,
    dead_lettered = c.dead_lettered + $5,
    committed = GREATEST(c.committed, COALESCE(
        (SELECT min(d."offset") - 1 FROM deliveries d WHERE d.topic = $1 AND d.consumer = $2),
        GREATEST(c.dispatched, $3))),
    updated_at = clock_timestamp()
WHERE c.topic = $1 AND c.name = $2
RETURNING c.committed, c.seek_epoch"#;

/// Wakes the consumer's subscribers on every replica (at commit): records became due
/// (nacked, dead-lettered), so they should dispatch again.
const RING_DUE: &str = concat!("SELECT ", notify_release!("$1", "$2"), " IS NULL");
/// Tells the consumer's subscribers that records were settled (those waiting for room
/// or, key-shared, for a subject look again).
const RING_SETTLED: &str = concat!("SELECT ", notify_settle!("$1", "$2"), " IS NULL");

/// Whom a finished turn wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ring {
    Nobody,
    Settled,
    Due,
}

/// How many records `$3` holds now.
const HELD_BY: &str =
    "SELECT count(*) FROM deliveries WHERE topic = $1 AND consumer = $2 AND owner = $3";

/// When to dispatch again: the earliest deadline of a held row, or due time of an
/// unblocked waiting row.
const NEXT_DUE: &str = r#"SELECT min(due_at) FROM deliveries
WHERE topic = $1 AND consumer = $2 AND NOT blocked"#;

const EXTEND: &str = r#"UPDATE deliveries SET due_at = clock_timestamp() + $4 * interval '1 millisecond'
WHERE topic = $1 AND consumer = $2 AND "offset" = ANY($3::int8[]) AND owner IS NOT NULL"#;

/// A subscriber left: what it held waits for redelivery now; the others are rung.
const RELEASE_HELD: &str = concat!(
    r#"
WITH released AS (
    UPDATE deliveries SET owner = NULL, due_at = clock_timestamp(), reason = 'subscriber left'
    WHERE topic = $1 AND consumer = $2 AND owner = $3
    RETURNING 1
)
SELECT (SELECT count(*) FROM released),
       (SELECT "#,
    notify_release!("$1", "$2"),
    r#" IS NULL FROM (SELECT 1 FROM released LIMIT 1) AS any_released)"#
);

fn failed(context: &'static str) -> impl FnOnce(sqlx::Error) -> LogError {
    move |e| LogError::from_sqlx(context, e)
}

/// An open transaction holding a shared consumer's row lock.
struct Turn {
    tx: Transaction<'static, Postgres>,
    topic: String,
    consumer: String,
    /// The low-water mark when the turn began.
    committed: i64,
    dispatched: i64,
    settings: ConsumerSettings,
    redelivered: i64,
    dead_lettered: i64,
}

impl EventLog {
    async fn turn(&self, topic: &str, consumer: &str) -> Result<Option<Turn>, LogError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(failed("starting a delivery"))?;
        let locked: Option<Locked> = sqlx::query_as(LOCK)
            .bind(topic)
            .bind(consumer)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed("locking a consumer"))?;
        Ok(locked.map(|l| Turn {
            tx,
            topic: topic.to_owned(),
            consumer: consumer.to_owned(),
            committed: l.committed,
            dispatched: l.dispatched,
            settings: l.settings.into(),
            redelivered: 0,
            dead_lettered: 0,
        }))
    }

    /// Hands a subscriber of a shared consumer up to `budget` records: first those due
    /// for redelivery, then new ones. `None` when the consumer does not exist.
    pub async fn dispatch(&self, req: &DispatchRequest<'_>) -> Result<Option<Dispatch>, LogError> {
        let Some(mut turn) = self.turn(req.topic, req.consumer).await? else {
            return Ok(None);
        };
        turn.expire().await?;
        let holding = turn.held_by(req.owner).await?;
        let budget = req.max_in_flight.saturating_sub(holding);
        let mut held = turn.take_waiting(req, budget).await?;
        let window_end = turn.committed + req.max_unsettled;
        let window_full = turn.dispatched >= window_end;
        let mut more = false;
        if held.len() < budget && !window_full {
            let (new, scanned_all) = turn.take_new(req, budget - held.len(), window_end).await?;
            more = !scanned_all && held.len() + new.len() < budget;
            held.extend(new);
        }
        held.sort_by_key(|h| h.offset);
        let next_due = turn.next_due().await?;
        let ring = if turn.dead_lettered > 0 {
            Ring::Due
        } else {
            Ring::Nobody
        };
        turn.finish(ring).await?;
        Ok(Some(Dispatch {
            holding: holding + held.len(),
            held,
            next_due,
            window_full,
            more,
        }))
    }

    /// Settles delivered records of a shared consumer (acks); returns its position.
    pub async fn settle(
        &self,
        topic: &str,
        consumer: &str,
        offsets: &[i64],
    ) -> Result<Change<Position>, LogError> {
        let mut turn = match self.shared_turn(topic, consumer).await? {
            Change::Done(turn) => turn,
            Change::NotShared => return Ok(Change::NotShared),
            Change::NotFound => return Ok(Change::NotFound),
        };
        // A settle that frees a key-shared subject wakes every subscriber (one of them
        // takes the next record of that subject); any other only those out of room.
        let unblocked = turn.settle(offsets).await?;
        let ring = if unblocked > 0 {
            Ring::Due
        } else {
            Ring::Settled
        };
        turn.finish(ring).await.map(Change::Done)
    }

    /// A turn on a consumer that must be shared (an exclusive one is left alone).
    async fn shared_turn(&self, topic: &str, consumer: &str) -> Result<Change<Turn>, LogError> {
        Ok(match self.turn(topic, consumer).await? {
            None => Change::NotFound,
            Some(turn) if !turn.settings.mode.is_shared() => Change::NotShared,
            Some(turn) => Change::Done(turn),
        })
    }

    /// Gives delivered records back for redelivery after `delay` (default: the
    /// back-off for their attempt), or dead-letters them (`dead_letter`, or when they
    /// reached `max_deliveries`).
    pub async fn nack(
        &self,
        topic: &str,
        consumer: &str,
        offsets: &[i64],
        redelivery: Redelivery<'_>,
    ) -> Result<Change<Position>, LogError> {
        let mut turn = match self.shared_turn(topic, consumer).await? {
            Change::Done(turn) => turn,
            Change::NotShared => return Ok(Change::NotShared),
            Change::NotFound => return Ok(Change::NotFound),
        };
        let rows: Vec<(i64, i32)> = sqlx::query_as(DELIVERED)
            .bind(topic)
            .bind(consumer)
            .bind(offsets)
            .fetch_all(&mut *turn.tx)
            .await
            .map_err(failed("reading delivered records"))?;
        turn.give_back(&rows, redelivery).await?;
        turn.finish(Ring::Due).await.map(Change::Done)
    }

    /// How many records `owner` holds now (a cheap look before a dispatch, without the
    /// consumer's lock).
    pub async fn holding(
        &self,
        topic: &str,
        consumer: &str,
        owner: Uuid,
    ) -> Result<usize, LogError> {
        let count: i64 = sqlx::query_scalar(HELD_BY)
            .bind(topic)
            .bind(consumer)
            .bind(owner)
            .fetch_one(&self.pool)
            .await
            .map_err(failed("counting held records"))?;
        Ok(count as usize)
    }

    /// Restarts the deadline of held records.
    pub async fn extend(
        &self,
        topic: &str,
        consumer: &str,
        offsets: &[i64],
        deadline: Duration,
    ) -> Result<(), LogError> {
        sqlx::query(EXTEND)
            .bind(topic)
            .bind(consumer)
            .bind(offsets)
            .bind(millis(deadline))
            .execute(&self.pool)
            .await
            .map_err(failed("extending ack deadlines"))?;
        Ok(())
    }

    /// A subscription ended: everything it held is redelivered now (to another).
    pub async fn release_held(
        &self,
        topic: &str,
        consumer: &str,
        owner: Uuid,
    ) -> Result<i64, LogError> {
        let (released, _): (i64, bool) = sqlx::query_as(RELEASE_HELD)
            .bind(topic)
            .bind(consumer)
            .bind(owner)
            .fetch_one(&self.pool)
            .await
            .map_err(failed("releasing held records"))?;
        Ok(released)
    }
}

/// What a change to a shared consumer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<T> {
    /// Done.
    Done(T),
    /// The consumer is exclusive; nothing changed.
    NotShared,
    /// There is no such consumer.
    NotFound,
}

/// How a nack wants its records back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery<'a> {
    /// After this long, or the consumer's back-off when `None`.
    After(Option<Duration>, &'a str),
    /// Never: to the dead-letter topic now, with this reason.
    DeadLetter(&'a str),
}

impl Turn {
    /// Held rows past their deadline wait for redelivery (or are dead-lettered).
    async fn expire(&mut self) -> Result<(), LogError> {
        let rows: Vec<(i64, i32)> = sqlx::query_as(EXPIRED)
            .bind(&self.topic)
            .bind(&self.consumer)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(failed("finding expired deliveries"))?;
        self.give_back(&rows, Redelivery::After(None, "ack deadline passed"))
            .await
    }

    /// Puts delivered rows back to waiting, or dead-letters those out of attempts.
    async fn give_back(
        &mut self,
        rows: &[(i64, i32)],
        redelivery: Redelivery<'_>,
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
    async fn park(&mut self, parked: &mut [Parked]) -> Result<(), LogError> {
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
    async fn settle(&mut self, offsets: &[i64]) -> Result<u64, LogError> {
        let subjects: Vec<String> = sqlx::query_scalar(SETTLE)
            .bind(&self.topic)
            .bind(&self.consumer)
            .bind(offsets)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(failed("settling records"))?;
        let subjects: Vec<String> = subjects.into_iter().filter(|s| !s.is_empty()).collect();
        if subjects.is_empty() || self.settings.mode != super::DeliveryMode::KeyShared {
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

    async fn held_by(&mut self, owner: Uuid) -> Result<usize, LogError> {
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
    async fn take_waiting(
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
    async fn take_new(
        &mut self,
        req: &DispatchRequest<'_>,
        budget: usize,
        window_end: i64,
    ) -> Result<(Vec<Held>, bool), LogError> {
        let scan = SCAN_LIMIT.min(window_end - self.dispatched);
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
        let key_shared = self.settings.mode == super::DeliveryMode::KeyShared;
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

    async fn busy_subjects(
        &mut self,
        records: &[(i64, String)],
    ) -> Result<std::collections::HashSet<String>, LogError> {
        if self.settings.mode != super::DeliveryMode::KeyShared {
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

    async fn insert(
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

    async fn next_due(&mut self) -> Result<Option<DateTime<Utc>>, LogError> {
        sqlx::query_scalar(NEXT_DUE)
            .bind(&self.topic)
            .bind(&self.consumer)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(failed("reading due deliveries"))
    }

    /// Moves the low-water mark and commits (ringing the consumer's subscribers as
    /// `ring` says); returns the position.
    async fn finish(mut self, ring: Ring) -> Result<Position, LogError> {
        let (topic, consumer) = (self.topic.clone(), self.consumer.clone());
        let position: Position = sqlx::query_as(ADVANCE)
            .bind(&topic)
            .bind(&consumer)
            .bind(self.dispatched)
            .bind(self.redelivered)
            .bind(self.dead_lettered)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(failed("moving the low-water mark"))?;
        let ring = match ring {
            Ring::Nobody => None,
            Ring::Settled => Some(RING_SETTLED),
            Ring::Due => Some(RING_DUE),
        };
        if let Some(sql) = ring {
            sqlx::query(sql)
                .bind(&topic)
                .bind(&consumer)
                .execute(&mut *self.tx)
                .await
                .map_err(failed("ringing subscribers"))?;
        }
        self.tx
            .commit()
            .await
            .map_err(failed("committing a delivery"))?;
        Ok(position)
    }
}
