use crate::log::{DeliveryMode, LogError};

/// Why a subscription, Ack, Seek or consumer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// No durable consumer of that name on the topic.
    #[error(
        "consumer '{consumer}' does not exist on topic '{topic}' (Subscribe or Seek creates it)"
    )]
    ConsumerNotFound {
        /// The topic.
        topic: String,
        /// The consumer name.
        consumer: String,
    },
    /// Ack was called without a consumer name.
    #[error("consumer: Ack needs a durable consumer name; ephemeral subscriptions keep no offset")]
    Ephemeral,
    /// An ack for an offset the topic has not reached.
    #[error("offset: {offset} is past the head of topic '{topic}' ({head})")]
    AckPastHead {
        /// The topic.
        topic: String,
        /// The offset acked.
        offset: i64,
        /// The topic's head.
        head: i64,
    },
    /// A start position beyond the next offset to be appended.
    #[error("start.offset: {offset} is past the next offset of topic '{topic}' ({next})")]
    StartPastHead {
        /// The topic.
        topic: String,
        /// The offset asked for.
        offset: i64,
        /// The next offset that will be appended.
        next: i64,
    },
    /// DeleteConsumer on a consumer with an attached subscriber.
    #[error("consumer '{consumer}' on topic '{topic}' has an attached subscriber: close it first")]
    ConsumerAttached {
        /// The topic.
        topic: String,
        /// The consumer name.
        consumer: String,
    },
    /// Another subscriber took the consumer over (this one could not renew its lease).
    #[error("consumer '{consumer}' on topic '{topic}' was taken over by another subscriber")]
    LeaseLost {
        /// The topic.
        topic: String,
        /// The consumer name.
        consumer: String,
    },
    /// A cap on open subscriptions was reached.
    #[error("too many subscriptions on {scope}: the limit is {limit} (--{flag})")]
    TooManySubscriptions {
        /// `this connection` or `this server`.
        scope: &'static str,
        /// The limit.
        limit: usize,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// Subscribe asked for another mode than the consumer has.
    #[error(
        "config.mode: consumer '{consumer}' on topic '{topic}' is {} and cannot be subscribed to as {}: \
         change it with UpdateConsumer, or use another consumer name",
        stored.name(), requested.name()
    )]
    ModeMismatch {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
        /// Its mode.
        stored: DeliveryMode,
        /// The mode asked for.
        requested: DeliveryMode,
    },
    /// An RPC of shared consumers on an exclusive one (Nack, ExtendAckDeadline,
    /// individual acks).
    #[error(
        "{rpc}: consumer '{consumer}' on topic '{topic}' is exclusive; {rpc} applies to shared and key-shared consumers"
    )]
    NotShared {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
        /// What was asked.
        rpc: &'static str,
    },
    /// A cumulative ack on a shared consumer.
    #[error("offset: consumer '{consumer}' on topic '{topic}' is {}; ack its records one by one with offsets", mode.name())]
    CumulativeAckOnShared {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
        /// Its mode.
        mode: DeliveryMode,
    },
    /// A type filter on a shared consumer (its subscribers share one dispatch point).
    #[error(
        "types: consumer '{consumer}' on topic '{topic}' is shared; its subscribers share every record, so type filters apply to exclusive and ephemeral subscriptions only"
    )]
    TypesOnShared {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
    },
    /// UpdateConsumer would change the mode while records are in flight.
    #[error("config.mode: consumer '{consumer}' on topic '{topic}' has records in flight; settle them before changing its mode from {}", from.name())]
    RecordsInFlight {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
        /// Its mode.
        from: DeliveryMode,
    },
    /// The server is shutting down; reconnect (to another replica) to resume.
    #[error("the server is shutting down; reconnect to resume")]
    ShuttingDown,
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}
