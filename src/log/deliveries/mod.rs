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
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

mod dispatch;
mod settle;

use dispatch::HELD_BY;
use settle::DELIVERED;

use super::settings::{ConsumerSettings, SettingsRow, millis};
use super::{EventLog, LogError, Position};
use crate::metrics::{Metrics, RedeliveryReason};

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
    /// Records given back in this turn, by reason, counted once it commits.
    given_back: Vec<(RedeliveryReason, u64)>,
    metrics: Metrics,
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
            given_back: Vec::new(),
            metrics: self.metrics.clone(),
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

    /// A turn on a consumer that must be shared (an exclusive one is left alone).
    async fn shared_turn(&self, topic: &str, consumer: &str) -> Result<Change<Turn>, LogError> {
        Ok(match self.turn(topic, consumer).await? {
            None => Change::NotFound,
            Some(turn) if !turn.settings.mode.is_shared() => Change::NotShared,
            Some(turn) => Change::Done(turn),
        })
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
        turn.give_back(&rows, redelivery, RedeliveryReason::Nack)
            .await?;
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
        let (released, _): (i64, Option<bool>) = sqlx::query_as(RELEASE_HELD)
            .bind(topic)
            .bind(consumer)
            .bind(owner)
            .fetch_one(&self.pool)
            .await
            .map_err(failed("releasing held records"))?;
        let gone = RedeliveryReason::SubscriberGone;
        self.metrics
            .redelivered(topic, consumer, gone, released as u64);
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
        for (reason, records) in self.given_back {
            self.metrics.redelivered(&topic, &consumer, reason, records);
        }
        self.metrics
            .dead_lettered(&topic, &consumer, self.dead_lettered as u64);
        Ok(position)
    }
}
