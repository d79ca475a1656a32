//! The event log on PostgreSQL: topics, appends with gapless offsets, and reads.
//!
//! Offsets are allocated under the topic row's lock inside the append transaction, so
//! appends to one topic commit one after another and a topic's offsets are 1, 2, 3, ...
//! in commit order: once a reader sees offset N, nothing below N can still appear.
//! Types here are the log's own; the gRPC layer converts to and from the wire.

mod append;
mod columns;
mod consumers;
mod error;
mod heads;
mod read;
mod renewals;
mod types;
mod window;

pub use consumers::{ConsumerInfo, Deleted, Position};
pub use error::{LogError, is_unavailable};
pub use heads::Heads;
pub use read::PageRequest;
pub use types::{Appended, Event, Payload, Record, SharedRecord, TopicInfo};
pub use window::{
    DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_RECORDS, DEFAULT_WINDOW_TOTAL_BYTES, Page, Window,
};

use std::sync::Arc;

use sqlx::PgPool;
use tokio_util::task::TaskTracker;

use self::append::{AppendJob, MAX_GROUP_EVENTS, Writer};
use crate::group::Grouper;

/// NOTIFY channel on which appends announce a topic's new head: `topic:head`.
pub const HEAD_CHANNEL: &str = "pulsebus_head";
/// NOTIFY channel on which acks and seeks announce a consumer's position:
/// `topic:consumer:committed:epoch`.
pub const CONSUMER_CHANNEL: &str = "pulsebus_consumer";
/// NOTIFY channel on which a released lease wakes standbys: `topic:consumer`.
pub const RELEASE_CHANNEL: &str = "pulsebus_release";

/// Creates a topic unless it exists.
const ENSURE_TOPIC: &str = "INSERT INTO topics (name) VALUES ($1) ON CONFLICT DO NOTHING";

/// What a caller of a grouped write (append, lease renewal) gets back: the flush's
/// outcome, or `Unavailable` when the flush was dropped with the runtime.
async fn group_reply<T>(
    outcome: tokio::sync::oneshot::Receiver<Result<T, Arc<LogError>>>,
) -> Result<T, LogError> {
    match outcome.await {
        Ok(result) => result.map_err(LogError::Shared),
        Err(_) => Err(LogError::Shared(Arc::new(LogError::Unavailable {
            source: sqlx::Error::PoolClosed,
        }))),
    }
}

/// Handle to the event log; cheap to clone (it wraps the connection pool).
#[derive(Clone)]
pub struct EventLog {
    pool: PgPool,
    heads: Arc<Heads>,
    window: Arc<Window>,
    appends: Arc<Grouper<String, AppendJob>>,
    renewals: Arc<Grouper<(), renewals::RenewJob>>,
}

impl EventLog {
    /// Wraps a pool whose database has the migrations applied, with tail windows of
    /// the default size.
    pub fn new(pool: PgPool) -> Self {
        Self::with_window(
            pool,
            Window::new(
                DEFAULT_WINDOW_RECORDS,
                DEFAULT_WINDOW_BYTES,
                DEFAULT_WINDOW_TOTAL_BYTES,
            ),
        )
    }

    /// Wraps a pool, keeping recent records of each topic in `window`.
    pub fn with_window(pool: PgPool, window: Window) -> Self {
        let writer = Writer {
            pool: pool.clone(),
            heads: Arc::default(),
            window: Arc::new(window),
        };
        let (heads, window) = (Arc::clone(&writer.heads), Arc::clone(&writer.window));
        let flush = move |topic, jobs| writer.clone().flush(topic, jobs);
        let appends = Grouper::new(
            flush,
            AppendJob::weight,
            MAX_GROUP_EVENTS,
            TaskTracker::new(),
        );
        let renewal_pool = pool.clone();
        let renewals = Grouper::new(
            move |(), jobs| renewals::flush(renewal_pool.clone(), jobs),
            |_| 1,
            renewals::MAX_RENEWALS,
            TaskTracker::new(),
        );
        Self {
            pool,
            heads,
            window,
            appends,
            renewals,
        }
    }

    /// The in-memory topic heads that this log advances after each commit.
    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    /// The pool, for components that keep their own state in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
