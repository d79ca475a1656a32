//! The event log on PostgreSQL: topics, appends with gapless offsets, and reads.
//!
//! Offsets are allocated under the topic row's lock inside the append transaction, so
//! appends to one topic commit one after another and a topic's offsets are 1, 2, 3, ...
//! in commit order: once a reader sees offset N, nothing below N can still appear.
//! Types here are the log's own; the gRPC layer converts to and from the wire.

mod append;
mod error;
mod read;
mod types;

pub use error::LogError;
pub use types::{Appended, Event, Payload, Record, TopicInfo};

use sqlx::PgPool;

/// The channel on which appends announce a topic's new head (`topic:head`), so other
/// server processes wake their subscribers.
pub const NOTIFY_CHANNEL: &str = "pulsebus";

/// Handle to the event log; cheap to clone (it wraps the connection pool).
#[derive(Debug, Clone)]
pub struct EventLog {
    pool: PgPool,
}

impl EventLog {
    /// Wraps a pool whose database has the migrations applied.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for components that keep their own state in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
