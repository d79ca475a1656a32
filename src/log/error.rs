use std::sync::Arc;

use uuid::Uuid;

/// What can go wrong in the log layer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The topic has never been published to.
    #[error("topic '{topic}' does not exist")]
    TopicNotFound {
        /// The topic asked for.
        topic: String,
    },
    /// CreateTopic of a topic that exists.
    #[error("topic '{topic}' already exists")]
    TopicExists {
        /// The topic asked for.
        topic: String,
    },
    /// DeleteTopic without force while durable consumers have subscribers attached.
    #[error(
        "topic '{topic}' has {consumers} consumer(s) with subscribers attached; \
         stop them or delete with force"
    )]
    TopicInUse {
        /// The topic asked for.
        topic: String,
        /// How many consumers are attached.
        consumers: i64,
    },
    /// The offset asked for was removed by retention (or never existed below the
    /// topic's first offset): reading resumes at `first_offset`.
    #[error(
        "offset {offset} of topic '{topic}' is below its first retained offset {first_offset} \
         (older events were removed by retention)"
    )]
    OutOfRange {
        /// The topic.
        topic: String,
        /// The offset asked for.
        offset: i64,
        /// The topic's first retained offset.
        first_offset: i64,
    },
    /// The topic no longer holds a record the subscriber says it handled: the log
    /// diverged (an asynchronous failover lost recent events and reused their offsets).
    #[error(
        "the log of topic '{topic}' no longer holds what this subscriber saw, from offset \
         {offset} on (its last seen event is {seen_id}; the head is {head}): the log \
         diverged, as in an asynchronous PostgreSQL failover, and the events there are not \
         the ones it handled"
    )]
    LogDiverged {
        /// The topic.
        topic: String,
        /// The first offset at which the log no longer holds what the subscriber saw.
        offset: i64,
        /// The topic's head now.
        head: i64,
        /// The id the subscriber saw last.
        seen_id: Uuid,
    },
    /// An event is larger than its topic's `max_event_bytes`.
    #[error(
        "events[{index}]: {bytes} exceeds the limit of {limit} bytes of topic '{topic}' \
         (its config's max_event_bytes)"
    )]
    EventTooLarge {
        /// The topic.
        topic: String,
        /// The event's index in its request.
        index: usize,
        /// Its encoded size.
        bytes: usize,
        /// The topic's limit.
        limit: u32,
    },
    /// An event id is already stored in another topic (ids are unique across topics).
    #[error("event id {id} is already stored in topic '{other_topic}'")]
    IdInOtherTopic {
        /// The conflicting id.
        id: Uuid,
        /// Where it is stored.
        other_topic: String,
    },
    /// PostgreSQL could not be reached or timed out; the caller may retry.
    #[error("the database is unavailable: {source}")]
    Unavailable {
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A failure shared by several requests written together (group commit).
    #[error(transparent)]
    Shared(Arc<LogError>),
    /// A grouped write never answered (its flush panicked): a server bug.
    #[error(transparent)]
    FlushLost(#[from] crate::group::FlushLost),
    /// Any other database failure: a bug or an operational problem, logged in full.
    #[error("database error while {context}: {source}")]
    Database {
        /// What the log was doing.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
}

impl LogError {
    /// Classifies a driver error: connection trouble is retryable, the rest is not.
    pub fn from_sqlx(context: &'static str, source: sqlx::Error) -> Self {
        if is_unavailable(&source) {
            Self::Unavailable { source }
        } else {
            Self::Database { context, source }
        }
    }
}

/// True when the error means "the database is not there right now".
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db
            .code()
            // Class 57 (operator intervention: shutdown, crash), 08 (connection), and
            // 25006: a read-only transaction, on a node demoted to standby under us.
            .is_some_and(|c| c.starts_with("57") || c.starts_with("08") || c == "25006"),
        _ => false,
    }
}

/// True when the error is a unique violation of the event id constraint.
pub fn is_id_conflict(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.constraint() == Some("events_id_unique"))
}
