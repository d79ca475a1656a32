//! A group of requests for several topics, written together: the topic rows are
//! locked in name order (so two replicas writing overlapping sets cannot deadlock),
//! every new event of every topic goes in with one statement, and each topic's head
//! moves and is announced. The common case is one autocommit statement; when it
//! cannot decide (an id stored already) a transaction looks the ids up first. Topics
//! that do not exist yet or refuse an event, and a group the transaction cannot write
//! (a concurrent append stored one of its ids, a deadlock with a writer that locks
//! differently), go through the one-topic path instead, one topic after another.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::plan::{Batch, Locked, Plan, StoredIds, Unique, find_ids};
use super::{AppendJob, Writer, fail_all};
use crate::log::columns::{Columns, Placed, Shares};
use crate::log::{Appended, Event, LogError};

/// The rows are sorted before they are locked (a locking clause applies after ORDER
/// BY), and the lock time is taken per row after its lock.
const LOCK_TOPICS: &str = "SELECT l.name, l.head, clock_timestamp(), l.max_event_bytes \
     FROM (SELECT name, head, max_event_bytes FROM topics WHERE name = ANY($1) \
           ORDER BY name FOR NO KEY UPDATE) l";

type Outcomes = Vec<Result<Vec<Appended>, LogError>>;

/// What one topic of the transaction wrote.
struct Written<'a> {
    locked: Locked,
    fresh: Vec<&'a Event>,
    outcomes: Outcomes,
}

impl Writer {
    /// Writes the jobs of several topics (keyed, so in name order) and answers each.
    pub(super) async fn write_topics(&self, mut topics: BTreeMap<String, Vec<AppendJob>>) {
        let written = match self.try_one_statement_for(&topics).await {
            Ok(written) => written,
            Err(err @ LogError::Unavailable { .. }) => {
                return fail_all(topics.into_values().flatten(), err);
            }
            // Nothing was written (an id stored already): the transaction decides.
            Err(err) => {
                tracing::debug!(error = %err, "a group of topics falls back to a transaction");
                match self.try_topics(&topics).await {
                    Ok(written) => written,
                    Err(err @ LogError::Unavailable { .. }) => {
                        return fail_all(topics.into_values().flatten(), err);
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "a group of topics falls back to one by one");
                        BTreeMap::new()
                    }
                }
            }
        };
        for (topic, outcomes) in written {
            let jobs = topics
                .remove(&topic)
                .expect("a written topic was asked for");
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                job.answer(outcome);
            }
        }
        // Left: topics to create or refusing an event (or all, when the transaction
        // failed): one by one.
        for (topic, jobs) in topics {
            self.write_topic(&topic, jobs).await;
        }
    }

    /// The common case in one round trip (see
    /// `Columns::append_topics_in_one_statement`): returns the outcomes of the topics
    /// it wrote; an error means it wrote nothing.
    async fn try_one_statement_for(
        &self,
        topics: &BTreeMap<String, Vec<AppendJob>>,
    ) -> Result<BTreeMap<String, Outcomes>, LogError> {
        let batches: BTreeMap<&str, Vec<Batch>> = topics
            .iter()
            .map(|(topic, jobs)| (topic.as_str(), jobs.iter().map(Batch::of).collect()))
            .collect();
        let unique: BTreeMap<&str, Unique> =
            batches.iter().map(|(t, b)| (*t, Unique::of(b))).collect();
        let mut shares = Shares::default();
        let mut events = Vec::new();
        for (topic, u) in &unique {
            shares.topic(topic, u.events.len(), Unique::largest(&batches[topic]));
            events.extend(u.events.iter().copied());
        }
        let written = Columns::from_events(&events)
            .append_topics_in_one_statement(&self.pool, shares)
            .await
            .map_err(|e| LogError::from_sqlx("appending events", e))?;
        Ok(written
            .into_iter()
            .map(|(topic, head, now)| {
                let u = &unique[topic.as_str()];
                self.announce(&topic, head, now, &u.events);
                let outcomes = u.outcomes(&batches[topic.as_str()], head, now);
                (topic, outcomes.into_iter().map(Ok).collect())
            })
            .collect())
    }

    /// One transaction for every topic of `topics` that exists; returns each written
    /// topic's outcomes, one per job. The outer error means nothing was written.
    async fn try_topics(
        &self,
        topics: &BTreeMap<String, Vec<AppendJob>>,
    ) -> Result<BTreeMap<String, Outcomes>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let batches: BTreeMap<&str, Vec<Batch>> = topics
            .iter()
            .map(|(topic, jobs)| (topic.as_str(), jobs.iter().map(Batch::of).collect()))
            .collect();
        let mut tx = self.pool.begin().await.map_err(err("starting an append"))?;
        let locked = lock_topics(&mut tx, batches.keys().copied()).await?;
        let mut stored = find_ids(&mut tx, batches.values().flatten()).await?;
        let written: BTreeMap<&str, Written> = locked
            .into_iter()
            .map(|(topic, locked)| {
                let topic = batches.get_key_value(topic.as_str()).expect("asked for").0;
                (*topic, plan(topic, locked, &batches[topic], &mut stored))
            })
            .collect();
        insert(&mut tx, &written).await?;
        tx.commit().await.map_err(err("committing an append"))?;
        Ok(written
            .into_iter()
            .map(|(topic, w)| {
                self.announce(topic, w.locked.head, w.locked.now, &w.fresh);
                (topic.to_owned(), w.outcomes)
            })
            .collect())
    }
}

/// Plans one topic's requests.
fn plan<'a>(
    topic: &'a str,
    locked: Locked,
    batches: &[Batch<'a>],
    stored: &mut StoredIds,
) -> Written<'a> {
    let mut plan = Plan::new(topic, locked, stored);
    let outcomes = batches.iter().map(|batch| plan.add(*batch)).collect();
    Written {
        locked,
        fresh: std::mem::take(&mut plan.fresh),
        outcomes,
    }
}

/// Locks the rows of those of `topics` that exist, in name order.
async fn lock_topics<'a>(
    tx: &mut Transaction<'static, Postgres>,
    topics: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, Locked>, LogError> {
    let names: Vec<&str> = topics.collect();
    let rows: Vec<(String, i64, DateTime<Utc>, Option<i32>)> = sqlx::query_as(LOCK_TOPICS)
        .bind(&names)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| LogError::from_sqlx("locking the topics", e))?;
    Ok(rows
        .into_iter()
        .map(|(name, head, now, max_event_bytes)| {
            let locked = Locked {
                head,
                now,
                max_event_bytes,
            };
            (name, locked)
        })
        .collect())
}

/// Inserts every topic's new events and moves their heads, in one statement.
async fn insert(
    tx: &mut Transaction<'static, Postgres>,
    written: &BTreeMap<&str, Written<'_>>,
) -> Result<(), LogError> {
    let mut events = Vec::new();
    let mut placed = Placed::default();
    for (topic, w) in written {
        for (event, offset) in w.fresh.iter().zip(w.locked.head + 1..) {
            events.push(*event);
            placed.row(topic, offset, w.locked.now);
        }
        if !w.fresh.is_empty() {
            placed.head(topic, w.locked.head + w.fresh.len() as i64);
        }
    }
    if events.is_empty() {
        return Ok(());
    }
    Columns::from_events(&events)
        .insert_placed(tx, placed)
        .await
}
