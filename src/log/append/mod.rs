//! Appending with group commit: while a write is in flight, Publish requests for any
//! topic queue for the next one. A flush of one topic locks its row, skips ids already
//! stored, inserts everything new with consecutive offsets in one statement, moves the
//! head and rings the NOTIFY doorbell ([`one_topic`]); a flush of several topics does
//! the same for all of them in one transaction, locking their rows in name order so
//! two replicas cannot deadlock ([`many_topics`]). Every topic row stays locked until
//! the commit, so each topic's offsets stay gapless and in commit order.
//!
//! Each request's events stay atomic: a request that cannot be stored (an id stored in
//! another topic, an event over the topic's `max_event_bytes`) fails alone and the
//! others commit.

mod many_topics;
mod one_topic;
mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::{
    Appended, CommitSink, Event, EventLog, Largest, LogError, Record, TopicPolicy, group_reply,
};
use crate::group::{Flush, reply_channel};
use crate::metrics::Metrics;
use crate::telemetry::stages;

/// Most events written in one transaction (more wait for the next one).
pub const MAX_GROUP_EVENTS: usize = 5000;

type Outcome = Result<Vec<Appended>, Arc<LogError>>;

/// One Publish request waiting for its group.
pub struct AppendJob {
    topic: String,
    events: Vec<Event>,
    largest: Largest,
    reply: oneshot::Sender<Outcome>,
}

impl AppendJob {
    /// How much of a group this job takes.
    pub fn weight(&self) -> usize {
        self.events.len()
    }

    fn answer(self, outcome: Result<Vec<Appended>, LogError>) {
        let _ = self.reply.send(outcome.map_err(Arc::new));
    }
}

/// Answers every job with the same failure.
fn fail_all(jobs: impl IntoIterator<Item = AppendJob>, err: LogError) {
    let err = Arc::new(err);
    for job in jobs {
        let _ = job.reply.send(Err(Arc::clone(&err)));
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
            topic: topic.to_owned(),
            events,
            largest,
            reply,
        };
        self.appends.submit((), job);
        group_reply(outcome).await
    }
}

impl Writer {
    /// The grouper's flush: writes the jobs' events, by topic, and answers each.
    pub fn flush(self, jobs: Vec<AppendJob>) -> Flush {
        Box::pin(
            async move {
                let (events, started) = (jobs.iter().map(AppendJob::weight).sum(), Instant::now());
                let mut topics: BTreeMap<String, Vec<AppendJob>> = BTreeMap::new();
                for job in jobs {
                    topics.entry(job.topic.clone()).or_default().push(job);
                }
                if topics.len() == 1 {
                    let (topic, jobs) = topics.pop_first().expect("one topic");
                    self.write_topic(&topic, jobs).await;
                } else {
                    self.write_topics(topics).await;
                }
                self.metrics.append_flushed(events, started.elapsed());
            }
            .instrument(stages::flush_span()),
        )
    }

    /// Tells the sink (this process's subscribers) about a topic's commit.
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
        stages::committed(topic, head + 1, head + fresh.len() as i64);
        self.sink.committed(topic, records.collect());
    }
}
