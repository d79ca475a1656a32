//! The subscription engine: Subscribe streams, Ack, Seek and consumer bookkeeping.
//!
//! Each subscription is one task feeding a bounded channel (see `task.rs`); durable
//! consumers keep their committed offset in PostgreSQL and hold a lease so only one
//! subscriber per consumer is active across all replicas (others wait as standbys).
//! Wake-ups come from this process's commits and, through LISTEN/NOTIFY, from other
//! replicas (see `listener.rs`); timers re-check the database so a lost notification
//! only costs latency.

mod acks;
mod error;
mod listener;
mod signals;
mod slots;
mod start;
mod task;

pub use error::SubscribeError;
pub use start::Start;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use self::acks::AckCoalescer;
use self::signals::Signals;
use self::slots::Slots;
use self::task::{Durable, Subscription};
use crate::log::{ConsumerInfo, Deleted, EventLog, SharedRecord};

pub use self::task::Item;

/// Tunables of the engine (flags of `pulsebus serve`).
#[derive(Debug, Clone, Copy)]
pub struct SubscribeConfig {
    /// How often an idle stream gets a heartbeat (and re-checks the head in PostgreSQL).
    pub heartbeat_interval: Duration,
    /// How long a durable subscriber's claim lasts without renewal: the bound on how
    /// long a crashed server's consumer stays unavailable to a standby.
    pub consumer_lease: Duration,
    /// Records read per catch-up page.
    pub page_size: usize,
    /// Bytes (about) read per catch-up page.
    pub page_bytes: usize,
    /// Records buffered between a subscription task and its gRPC stream.
    pub channel_capacity: usize,
    /// Most open subscriptions on this server.
    pub max_subscriptions: usize,
    /// Most open subscriptions on one client connection.
    pub max_subscriptions_per_connection: usize,
}

impl Default for SubscribeConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(5),
            consumer_lease: Duration::from_secs(10),
            page_size: 500,
            page_bytes: 1024 * 1024,
            channel_capacity: 16,
            max_subscriptions: 10_000,
            max_subscriptions_per_connection: 1_000,
        }
    }
}

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The next record, shared with the tail window and the topic's other streams.
    Record(Arc<SharedRecord>),
    /// The stream is alive; where the topic and the consumer stand.
    Heartbeat {
        /// The topic's head.
        head: i64,
        /// The consumer's committed offset (0 for ephemeral subscriptions).
        committed: i64,
    },
}

/// A validated Subscribe request.
#[derive(Debug, Clone)]
pub struct SubscribeParams {
    /// The topic.
    pub topic: String,
    /// The durable consumer, or `None` for an ephemeral subscription.
    pub consumer: Option<String>,
    /// Where a new consumer (or an ephemeral subscription) starts.
    pub start: Start,
    /// Only these types; empty means all.
    pub types: Vec<String>,
    /// Most unacknowledged records in flight (durable only).
    pub max_in_flight: usize,
}

/// The engine shared by all RPCs of one server.
pub struct Engine {
    log: EventLog,
    config: SubscribeConfig,
    signals: Arc<Signals>,
    acks: AckCoalescer,
    slots: Arc<Slots>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Engine {
    /// Starts the engine and its notification listener; everything stops with `token`.
    pub fn start(log: EventLog, config: SubscribeConfig, token: CancellationToken) -> Self {
        let signals = Arc::new(Signals::default());
        let tracker = TaskTracker::new();
        let acks = AckCoalescer::new(log.clone(), Arc::clone(&signals), tracker.clone());
        tracker.spawn(listener::run(
            log.clone(),
            Arc::clone(&signals),
            token.child_token(),
        ));
        Self {
            slots: Slots::new(
                config.max_subscriptions,
                config.max_subscriptions_per_connection,
            ),
            log,
            config,
            signals,
            acks,
            token,
            tracker,
        }
    }

    /// Opens a subscription: sets up the consumer (or start point) now, so bad requests
    /// fail at once, and returns the channel its task delivers into.
    pub async fn subscribe(
        &self,
        params: SubscribeParams,
        peer: Option<SocketAddr>,
    ) -> Result<mpsc::Receiver<Item>, SubscribeError> {
        if self.token.is_cancelled() {
            return Err(SubscribeError::ShuttingDown);
        }
        let slot = self.slots.take(peer)?;
        self.log.ensure_topic(&params.topic).await?;
        let head = self.head(&params.topic).await?;
        let (tx, rx) = mpsc::channel(self.config.channel_capacity);
        let mut sub = Subscription {
            log: self.log.clone(),
            config: self.config,
            topic: params.topic.clone(),
            types: params.types,
            max_in_flight: params.max_in_flight,
            tx,
            token: self.token.child_token(),
            head: self.log.heads().watch(&params.topic),
            durable: None,
            next: 1,
            committed: 0,
            epoch: -1,
            in_flight: VecDeque::new(),
            last_delivered: 0,
            skipped_to: 0,
            _slot: slot,
        };
        match params.consumer {
            Some(name) => {
                let committed = match self.log.position(&params.topic, &name).await? {
                    Some(position) => position.committed,
                    None => {
                        let committed =
                            start::committed_for(&self.log, &params.topic, params.start, head)
                                .await?;
                        self.log
                            .create_consumer(&params.topic, &name, committed)
                            .await?
                            .committed
                    }
                };
                sub.committed = committed;
                sub.durable = Some(Durable {
                    signal: self.signals.watch(&params.topic, &name),
                    signals: Arc::clone(&self.signals),
                    name,
                    owner: Uuid::new_v4(),
                    lease_until: Instant::now(),
                });
            }
            None => {
                let committed =
                    start::committed_for(&self.log, &params.topic, params.start, head).await?;
                sub.next = committed + 1;
                sub.last_delivered = committed;
            }
        }
        self.tracker.spawn(sub.run());
        Ok(rx)
    }

    /// Commits `offset` for a durable consumer; returns the committed offset after it.
    pub async fn ack(
        &self,
        topic: &str,
        consumer: Option<&str>,
        offset: i64,
    ) -> Result<i64, SubscribeError> {
        let consumer = consumer.ok_or(SubscribeError::Ephemeral)?;
        if offset > self.log.heads().known(topic) {
            let head = self.head(topic).await?;
            if offset > head {
                return Err(SubscribeError::AckPastHead {
                    topic: topic.to_owned(),
                    offset,
                    head,
                });
            }
        }
        match self.acks.ack(topic, consumer, offset).await? {
            Some(position) => Ok(position.committed),
            None => Err(self.consumer_not_found(topic, consumer)),
        }
    }

    /// Moves a consumer (creating it if needed); an attached subscription follows.
    pub async fn seek(
        &self,
        topic: &str,
        consumer: &str,
        start: Start,
    ) -> Result<i64, SubscribeError> {
        let head = self.head(topic).await?;
        let committed = start::committed_for(&self.log, topic, start, head).await?;
        let position = self.log.seek(topic, consumer, committed).await?;
        self.signals.moved(topic, consumer, position);
        Ok(position.committed)
    }

    /// The topic's consumers.
    pub async fn list(&self, topic: &str) -> Result<Vec<ConsumerInfo>, SubscribeError> {
        self.head(topic).await?;
        Ok(self.log.list_consumers(topic).await?)
    }

    /// Forgets a detached consumer.
    pub async fn delete(&self, topic: &str, consumer: &str) -> Result<(), SubscribeError> {
        self.head(topic).await?;
        match self.log.delete_consumer(topic, consumer).await? {
            Deleted::Yes => Ok(()),
            Deleted::NotFound => Err(self.consumer_not_found(topic, consumer)),
            Deleted::Attached => Err(SubscribeError::ConsumerAttached {
                topic: topic.to_owned(),
                consumer: consumer.to_owned(),
            }),
        }
    }

    /// How many subscriptions are open on this server.
    pub fn open_subscriptions(&self) -> usize {
        self.slots.open()
    }

    /// Ends every subscription (each stream closes with UNAVAILABLE so clients
    /// reconnect) and waits, up to `timeout`, for their leases to be released.
    pub async fn shutdown(&self, timeout: Duration) {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some subscriptions did not end in time");
        }
    }

    async fn head(&self, topic: &str) -> Result<i64, SubscribeError> {
        let head =
            self.log
                .head(topic)
                .await?
                .ok_or_else(|| crate::log::LogError::TopicNotFound {
                    topic: topic.to_owned(),
                })?;
        self.log.heads().advance(topic, head);
        Ok(head)
    }

    fn consumer_not_found(&self, topic: &str, consumer: &str) -> SubscribeError {
        SubscribeError::ConsumerNotFound {
            topic: topic.to_owned(),
            consumer: consumer.to_owned(),
        }
    }
}
