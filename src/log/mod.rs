//! The event log on PostgreSQL: topics, appends with gapless offsets, reads, durable
//! consumers and their leases. Storage only: what the log committed is announced to a
//! [`CommitSink`] (the subscription side keeps its in-memory tail with it).
//!
//! Offsets are allocated under the topic row's lock inside the append transaction, so
//! appends to one topic commit one after another and a topic's offsets are 1, 2, 3, ...
//! in commit order: once a reader sees offset N, nothing below N can still appear.
//! Types here are the log's own; the gRPC layer converts to and from the wire.

#[macro_use]
mod notify;
mod append;
mod attempts;
mod columns;
mod consumers;
mod dead_letters;
mod deliveries;
mod divergence;
mod error;
mod individual_acks;
mod read;
mod renewals;
pub mod retention;
mod rewinds;
mod settings;
mod topics;
mod types;

pub use attempts::Attempts;
pub use consumers::{ConsumerInfo, Deleted, Position};
pub use dead_letters::dead_letter_id;
pub use deliveries::{Change, Dispatch, DispatchRequest, Held, Redelivery};
pub use divergence::Seen;
pub use error::{LogError, is_unavailable};
pub use notify::{CHANNELS, Notice, parse as parse_notice};
pub use read::{Page, PageRequest};
pub use rewinds::{ExclusiveNack, HeldBy, Redelivering};
pub use settings::{ConsumerSettings, DeliveryMode, SettingsPatch, Updated};
pub use topics::{TopicConfig, TopicPatch, TopicPolicy, TopicRemoved};
pub use types::{Appended, Event, Largest, Payload, Record, TopicInfo};

use std::sync::Arc;

use sqlx::PgPool;

use self::append::{AppendJob, MAX_GROUP_EVENTS, Writer};
use crate::group::{Grouper, Reply};
use crate::metrics::Metrics;
use crate::tasks::Tasks;

/// Creates a topic unless it exists (dead-letter topics; others go through
/// [`TopicPolicy`]).
const ENSURE_TOPIC: &str = "INSERT INTO topics (name) VALUES ($1) ON CONFLICT DO NOTHING";

/// Where the log announces its commits, in commit order per topic.
pub trait CommitSink: Send + Sync {
    /// `records` of `topic` (consecutive offsets, `time` filled in) just committed.
    fn committed(&self, topic: &str, records: Vec<Record>);

    /// `topic` (whose head was `head`) was deleted with its events: nothing of it may
    /// be served any more.
    fn deleted(&self, _topic: &str, _head: i64) {}
}

/// Nobody listens (tools and tests that use the log alone).
impl CommitSink for () {
    fn committed(&self, _topic: &str, _records: Vec<Record>) {}
}

/// What a caller of a grouped write (append, lease renewal) gets back: the flush's
/// outcome, or `FlushLost` when the flush never answered (a bug, INTERNAL).
async fn group_reply<T>(outcome: Reply<Result<T, Arc<LogError>>>) -> Result<T, LogError> {
    outcome.wait().await?.map_err(LogError::Shared)
}

/// Handle to the event log; cheap to clone (it wraps the connection pool).
#[derive(Clone)]
pub struct EventLog {
    pool: PgPool,
    sink: Arc<dyn CommitSink>,
    policy: TopicPolicy,
    appends: Arc<Grouper<(), AppendJob>>,
    renewals: Arc<Grouper<(), renewals::RenewJob>>,
    metrics: Metrics,
}

impl EventLog {
    /// Wraps a pool whose database has the migrations applied; commits are announced
    /// to `sink`, and group-commit flushes run on `tasks`.
    pub fn new(pool: PgPool, sink: Arc<dyn CommitSink>, tasks: &Tasks) -> Self {
        Self::with(pool, sink, tasks, TopicPolicy::default(), &Metrics::new())
    }

    /// [`EventLog::new`], creating unknown topics (or not) as `policy` says, and
    /// counting appends, redeliveries and dead letters in `metrics`.
    pub fn with(
        pool: PgPool,
        sink: Arc<dyn CommitSink>,
        tasks: &Tasks,
        policy: TopicPolicy,
        metrics: &Metrics,
    ) -> Self {
        let writer = Writer {
            pool: pool.clone(),
            sink: Arc::clone(&sink),
            policy,
            metrics: metrics.clone(),
        };
        let flush = move |(), jobs| writer.clone().flush(jobs);
        let appends = Grouper::new(flush, AppendJob::weight, MAX_GROUP_EVENTS, tasks.tracker());
        let renewal_pool = pool.clone();
        let renewals = Grouper::new(
            move |(), jobs| renewals::flush(renewal_pool.clone(), jobs),
            |_| 1,
            renewals::MAX_RENEWALS,
            tasks.tracker(),
        );
        Self {
            pool,
            sink,
            policy,
            appends,
            renewals,
            metrics: metrics.clone(),
        }
    }

    /// The pool, for components that keep their own state in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
