//! The event log on PostgreSQL: topics, appends with gapless offsets, and reads.
//!
//! Offsets are allocated under the topic row's lock inside the append transaction, so
//! appends to one topic commit one after another and a topic's offsets are 1, 2, 3, ...
//! in commit order: once a reader sees offset N, nothing below N can still appear.
//! Types here are the log's own; the gRPC layer converts to and from the wire.

mod append;
mod consumers;
mod error;
mod heads;
mod read;
mod types;

pub use consumers::{ConsumerInfo, Deleted, Position};
pub use error::{LogError, is_unavailable};
pub use heads::Heads;
pub use read::PageRequest;
pub use types::{Appended, Event, Payload, Record, TopicInfo};

use std::sync::Arc;

use sqlx::PgPool;

/// NOTIFY channel on which appends announce a topic's new head: `topic:head`.
pub const HEAD_CHANNEL: &str = "pulsebus_head";
/// NOTIFY channel on which acks and seeks announce a consumer's position:
/// `topic:consumer:committed:epoch`.
pub const CONSUMER_CHANNEL: &str = "pulsebus_consumer";
/// NOTIFY channel on which a released lease wakes standbys: `topic:consumer`.
pub const RELEASE_CHANNEL: &str = "pulsebus_release";

/// Creates a topic unless it exists.
const ENSURE_TOPIC: &str = "INSERT INTO topics (name) VALUES ($1) ON CONFLICT DO NOTHING";

/// Handle to the event log; cheap to clone (it wraps the connection pool).
#[derive(Debug, Clone)]
pub struct EventLog {
    pool: PgPool,
    heads: Arc<Heads>,
}

impl EventLog {
    /// Wraps a pool whose database has the migrations applied.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            heads: Arc::default(),
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
