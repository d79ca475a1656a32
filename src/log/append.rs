//! Appending with group commit: concurrent Publish requests for one topic share one
//! transaction that locks the topic row, skips ids already stored, inserts everything
//! new with consecutive offsets in one statement, moves the head and rings the NOTIFY
//! doorbell. Each request's events stay atomic: a request that cannot be stored (an
//! id stored in another topic, an event over the topic's `max_event_bytes`) fails
//! alone and the others commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::columns::Columns;
use super::error::is_id_conflict;
use super::{
    Appended, CommitSink, Event, EventLog, Largest, LogError, Record, TopicPolicy, group_reply,
};
use crate::group::{Flush, reply_channel};
use crate::metrics::Metrics;

/// Most events written in one transaction (more wait for the next one).
pub const MAX_GROUP_EVENTS: usize = 5000;

/// How often a lone append is retried when a concurrent append to another topic stored
/// one of its ids first (the retry then reports that precisely).
const ID_CONFLICT_RETRIES: usize = 2;

const LOCK_TOPIC: &str =
    "SELECT head, clock_timestamp(), max_event_bytes FROM topics WHERE name = $1 FOR UPDATE";
const FIND_IDS: &str =
    r#"SELECT id, topic, "offset", appended_at FROM events WHERE id = ANY($1::uuid[])"#;

type Outcome = Result<Vec<Appended>, Arc<LogError>>;

/// One Publish request waiting for its group.
pub struct AppendJob {
    events: Vec<Event>,
    largest: Largest,
    reply: oneshot::Sender<Outcome>,
}

impl AppendJob {
    /// How much of a group this job takes.
    pub fn weight(&self) -> usize {
        self.events.len()
    }
}

/// What a group transaction writes with: the pool, and where commits are announced.
#[derive(Clone)]
pub struct Writer {
    pub pool: PgPool,
    pub sink: Arc<dyn CommitSink>,
    pub policy: TopicPolicy,
    pub metrics: Metrics,
}

impl EventLog {
    /// Appends `events` to `topic` atomically (creating the topic on first use) and
    /// returns one outcome per event, in order, after the transaction committed.
    /// `largest` is checked against the topic's `max_event_bytes`.
    pub async fn append(
        &self,
        topic: &str,
        events: Vec<Event>,
        largest: Largest,
    ) -> Result<Vec<Appended>, LogError> {
        let (reply, outcome) = reply_channel();
        let job = AppendJob {
            events,
            largest,
            reply,
        };
        self.appends.submit(topic.to_owned(), job);
        group_reply(outcome).await
    }
}

impl Writer {
    /// The grouper's flush: writes the jobs' events in one transaction and answers each.
    pub fn flush(self, topic: String, jobs: Vec<AppendJob>) -> Flush {
        Box::pin(async move {
            let (events, started) = (jobs.iter().map(AppendJob::weight).sum(), Instant::now());
            self.write_group(&topic, jobs).await;
            self.metrics.append_flushed(events, started.elapsed());
        })
    }

    async fn write_group(&self, topic: &str, jobs: Vec<AppendJob>) {
        let batches: Vec<Batch> = jobs.iter().map(Batch::of).collect();
        match self.try_one_statement(topic, &batches).await {
            Ok(Some(outcomes)) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
                return;
            }
            Err(err @ LogError::Unavailable { .. }) => {
                let err = Arc::new(err);
                for job in jobs {
                    let _ = job.reply.send(Err(Arc::clone(&err)));
                }
                return;
            }
            // Nothing was written: a new topic, an id stored elsewhere, or a refused row.
            Ok(None) => tracing::debug!(topic, "append falls back to a transaction"),
            Err(err) => tracing::debug!(topic, error = %err, "append falls back to a transaction"),
        }
        match self.try_group(topic, &batches).await {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome.map_err(Arc::new));
                }
            }
            // One request's rows were refused (or another topic stored one of these ids
            // concurrently): write the requests one at a time, so only the culprit
            // fails. An unreachable database fails them all at once.
            Err(err)
                if jobs.len() > 1 && !matches!(err, LogError::Unavailable { .. })
                    || is_conflict(&err) =>
            {
                for job in jobs {
                    let outcome = self.append_alone(topic, Batch::of(&job)).await;
                    let _ = job.reply.send(outcome.map_err(Arc::new));
                }
            }
            Err(err) => {
                let err = Arc::new(err);
                for job in jobs {
                    let _ = job.reply.send(Err(Arc::clone(&err)));
                }
            }
        }
    }

    /// The common case in one round trip (see `APPEND_IN_ONE_STATEMENT`); `None` when
    /// the step-by-step transaction must decide.
    async fn try_one_statement(
        &self,
        topic: &str,
        batches: &[Batch<'_>],
    ) -> Result<Option<Vec<Vec<Appended>>>, LogError> {
        let mut unique: Vec<&Event> = Vec::new();
        let mut seen = HashSet::new();
        for event in batches.iter().flat_map(|b| b.events.iter()) {
            if seen.insert(event.id) {
                unique.push(event);
            }
        }
        let largest = batches.iter().map(|b| b.largest.bytes).max().unwrap_or(0);
        let Some((head, now)) = Columns::from_events(&unique)
            .append_in_one_statement(&self.pool, topic, largest)
            .await
            .map_err(|e| LogError::from_sqlx("appending events", e))?
        else {
            return Ok(None);
        };
        let offsets: HashMap<Uuid, i64> = unique.iter().map(|e| e.id).zip(head + 1..).collect();
        let mut first = HashSet::new();
        let outcomes = batches
            .iter()
            .map(|batch| {
                let appended = |e: &Event| Appended {
                    id: e.id,
                    offset: offsets[&e.id],
                    duplicate: !first.insert(e.id),
                    appended_at: now,
                };
                batch.events.iter().map(appended).collect()
            })
            .collect();
        let fresh = unique;
        self.announce(topic, head, now, &fresh);
        Ok(Some(outcomes))
    }

    /// Writes one request on its own, retrying when a concurrent append to another
    /// topic stored one of its ids first (the retry then names that topic).
    async fn append_alone(&self, topic: &str, batch: Batch<'_>) -> Result<Vec<Appended>, LogError> {
        let mut attempt = 0;
        loop {
            match self.try_group(topic, &[batch]).await {
                Ok(mut outcomes) => return outcomes.remove(0),
                Err(err) if is_conflict(&err) && attempt < ID_CONFLICT_RETRIES => attempt += 1,
                Err(err) => return Err(err),
            }
        }
    }

    /// One transaction for all `batches`; the outer error fails them all, an inner one
    /// fails only its batch.
    async fn try_group(
        &self,
        topic: &str,
        batches: &[Batch<'_>],
    ) -> Result<Vec<Result<Vec<Appended>, LogError>>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("starting an append"))?;
        let locked = lock_topic(&mut tx, topic, &self.policy).await?;
        let (head, now) = (locked.head, locked.now);
        let stored = find_ids(&mut tx, batches).await?;
        let mut plan = Plan::new(topic, locked, stored);
        let outcomes: Vec<_> = batches.iter().map(|batch| plan.add(*batch)).collect();
        if !plan.fresh.is_empty() {
            Columns::from_events(&plan.fresh)
                .insert(&mut tx, topic, head, now)
                .await?;
        }
        tx.commit().await.map_err(err("committing an append"))?;
        self.announce(topic, head, now, &plan.fresh);
        Ok(outcomes)
    }

    /// Tells the sink (this process's subscribers) about the commit.
    fn announce(&self, topic: &str, head: i64, now: DateTime<Utc>, fresh: &[&Event]) {
        if fresh.is_empty() {
            return;
        }
        let records = fresh.iter().zip(head + 1..).map(|(e, offset)| Record {
            topic: topic.to_owned(),
            offset,
            appended_at: now,
            event: e.stored(now),
        });
        self.sink.committed(topic, records.collect());
    }
}

fn is_conflict(err: &LogError) -> bool {
    matches!(err, LogError::Database { source, .. } if is_id_conflict(source))
}

/// One request of a group: its events and the largest of them.
#[derive(Clone, Copy)]
struct Batch<'a> {
    events: &'a [Event],
    largest: Largest,
}

impl<'a> Batch<'a> {
    fn of(job: &'a AppendJob) -> Self {
        Self {
            events: &job.events,
            largest: job.largest,
        }
    }
}

/// The locked topic row: its head, the lock time and its event size limit.
struct Locked {
    head: i64,
    now: DateTime<Utc>,
    max_event_bytes: Option<i32>,
}

/// Locks the topic row (creating it if `policy` allows).
async fn lock_topic(
    tx: &mut Transaction<'static, Postgres>,
    topic: &str,
    policy: &TopicPolicy,
) -> Result<Locked, LogError> {
    let err = |e| LogError::from_sqlx("locking the topic", e);
    type Row = (i64, DateTime<Utc>, Option<i32>);
    let lock = || sqlx::query_as::<_, Row>(LOCK_TOPIC).bind(topic);
    let row = match lock().fetch_optional(&mut **tx).await.map_err(err)? {
        Some(row) => row,
        None => {
            policy.create(&mut **tx, topic).await?;
            lock().fetch_one(&mut **tx).await.map_err(err)?
        }
    };
    let (head, now, max_event_bytes) = row;
    Ok(Locked {
        head,
        now,
        max_event_bytes,
    })
}

type StoredIds = HashMap<Uuid, (String, i64, DateTime<Utc>)>;

async fn find_ids(conn: &mut PgConnection, batches: &[Batch<'_>]) -> Result<StoredIds, LogError> {
    let ids: Vec<Uuid> = batches
        .iter()
        .flat_map(|b| b.events.iter().map(|e| e.id))
        .collect();
    // Not a cached statement: planned with these ids, so it is always an index lookup
    // (a generic plan made while the table was small scans it whole).
    let rows: Vec<(Uuid, String, i64, DateTime<Utc>)> = sqlx::query_as(FIND_IDS)
        .bind(&ids)
        .persistent(false)
        .fetch_all(conn)
        .await
        .map_err(|e| LogError::from_sqlx("looking up event ids", e))?;
    Ok(rows
        .into_iter()
        .map(|(id, topic, offset, at)| (id, (topic, offset, at)))
        .collect())
}

/// Offsets for a group: stored ids (and ids an earlier request of the group takes) are
/// duplicates; the rest take consecutive offsets after the head.
struct Plan<'a> {
    topic: &'a str,
    next: i64,
    now: DateTime<Utc>,
    max_event_bytes: Option<i32>,
    stored: StoredIds,
    fresh: Vec<&'a Event>,
}

impl<'a> Plan<'a> {
    fn new(topic: &'a str, locked: Locked, stored: StoredIds) -> Self {
        Self {
            topic,
            next: locked.head + 1,
            now: locked.now,
            max_event_bytes: locked.max_event_bytes,
            stored,
            fresh: Vec::new(),
        }
    }

    /// Refuses a request with an event over the topic's size limit.
    fn fits(&self, largest: Largest) -> Result<(), LogError> {
        let Some(limit) = self.max_event_bytes.map(i32::unsigned_abs) else {
            return Ok(());
        };
        if largest.bytes <= limit as usize {
            return Ok(());
        }
        Err(LogError::EventTooLarge {
            topic: self.topic.to_owned(),
            index: largest.index,
            bytes: largest.bytes,
            limit,
        })
    }

    /// Plans one request; nothing of it is taken if an event is over the topic's size
    /// limit or any of its ids lives in another topic.
    fn add(&mut self, batch: Batch<'a>) -> Result<Vec<Appended>, LogError> {
        self.fits(batch.largest)?;
        let batch = batch.events;
        if let Some((id, other)) = batch.iter().find_map(|e| {
            self.stored
                .get(&e.id)
                .filter(|s| s.0 != self.topic)
                .map(|s| (e.id, &s.0))
        }) {
            return Err(LogError::IdInOtherTopic {
                id,
                other_topic: other.clone(),
            });
        }
        let mut results = Vec::with_capacity(batch.len());
        for event in batch {
            let (offset, duplicate, appended_at) = match self.stored.get(&event.id) {
                Some((_, offset, at)) => (*offset, true, *at),
                None => {
                    let offset = self.next;
                    self.next += 1;
                    self.fresh.push(event);
                    self.stored
                        .insert(event.id, (self.topic.to_owned(), offset, self.now));
                    (offset, false, self.now)
                }
            };
            results.push(Appended {
                id: event.id,
                offset,
                duplicate,
                appended_at,
            });
        }
        Ok(results)
    }
}
