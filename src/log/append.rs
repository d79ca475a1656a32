//! Appending with group commit: concurrent Publish requests for one topic share one
//! transaction that locks the topic row, skips ids already stored, inserts everything
//! new with consecutive offsets in one statement, moves the head and rings the NOTIFY
//! doorbell. Each request's events stay atomic: a request that cannot be stored fails
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
use super::{Appended, CommitSink, Event, EventLog, LogError, Record, TopicPolicy, group_reply};
use crate::group::{Flush, reply_channel};
use crate::metrics::Metrics;

/// Most events written in one transaction (more wait for the next one).
pub const MAX_GROUP_EVENTS: usize = 5000;

/// How often a lone append is retried when a concurrent append to another topic stored
/// one of its ids first (the retry then reports that precisely).
const ID_CONFLICT_RETRIES: usize = 2;

const LOCK_TOPIC: &str = "SELECT head, clock_timestamp() FROM topics WHERE name = $1 FOR UPDATE";
const FIND_IDS: &str =
    r#"SELECT id, topic, "offset", appended_at FROM events WHERE id = ANY($1::uuid[])"#;

type Outcome = Result<Vec<Appended>, Arc<LogError>>;

/// One Publish request waiting for its group.
pub struct AppendJob {
    events: Vec<Event>,
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
    pub async fn append(&self, topic: &str, events: Vec<Event>) -> Result<Vec<Appended>, LogError> {
        let (reply, outcome) = reply_channel();
        self.appends
            .submit(topic.to_owned(), AppendJob { events, reply });
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
        let batches: Vec<&[Event]> = jobs.iter().map(|j| j.events.as_slice()).collect();
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
                    let outcome = self.append_alone(topic, &job.events).await;
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
        batches: &[&[Event]],
    ) -> Result<Option<Vec<Vec<Appended>>>, LogError> {
        let mut unique: Vec<&Event> = Vec::new();
        let mut seen = HashSet::new();
        for event in batches.iter().flat_map(|b| b.iter()) {
            if seen.insert(event.id) {
                unique.push(event);
            }
        }
        let Some((head, now)) = Columns::from_events(&unique)
            .append_in_one_statement(&self.pool, topic)
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
                batch.iter().map(appended).collect()
            })
            .collect();
        let fresh = unique;
        self.announce(topic, head, now, &fresh);
        Ok(Some(outcomes))
    }

    /// Writes one request on its own, retrying when a concurrent append to another
    /// topic stored one of its ids first (the retry then names that topic).
    async fn append_alone(&self, topic: &str, events: &[Event]) -> Result<Vec<Appended>, LogError> {
        let mut attempt = 0;
        loop {
            match self.try_group(topic, &[events]).await {
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
        batches: &[&[Event]],
    ) -> Result<Vec<Result<Vec<Appended>, LogError>>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("starting an append"))?;
        let (head, now) = lock_topic(&mut tx, topic, &self.policy).await?;
        let stored = find_ids(&mut tx, batches).await?;
        let mut plan = Plan::new(topic, head, now, stored);
        let outcomes: Vec<_> = batches.iter().map(|batch| plan.add(batch)).collect();
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

/// Locks the topic row (creating it if `policy` allows) and returns its head and the
/// lock time.
async fn lock_topic(
    tx: &mut Transaction<'static, Postgres>,
    topic: &str,
    policy: &TopicPolicy,
) -> Result<(i64, DateTime<Utc>), LogError> {
    let err = |e| LogError::from_sqlx("locking the topic", e);
    let lock = || sqlx::query_as::<_, (i64, DateTime<Utc>)>(LOCK_TOPIC).bind(topic);
    if let Some(row) = lock().fetch_optional(&mut **tx).await.map_err(err)? {
        return Ok(row);
    }
    policy.create(&mut **tx, topic).await?;
    lock().fetch_one(&mut **tx).await.map_err(err)
}

type StoredIds = HashMap<Uuid, (String, i64, DateTime<Utc>)>;

async fn find_ids(conn: &mut PgConnection, batches: &[&[Event]]) -> Result<StoredIds, LogError> {
    let ids: Vec<Uuid> = batches
        .iter()
        .flat_map(|b| b.iter().map(|e| e.id))
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
    stored: StoredIds,
    fresh: Vec<&'a Event>,
}

impl<'a> Plan<'a> {
    fn new(topic: &'a str, head: i64, now: DateTime<Utc>, stored: StoredIds) -> Self {
        Self {
            topic,
            next: head + 1,
            now,
            stored,
            fresh: Vec::new(),
        }
    }

    /// Plans one request; nothing of it is taken if any of its ids lives in another topic.
    fn add(&mut self, batch: &'a [Event]) -> Result<Vec<Appended>, LogError> {
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
