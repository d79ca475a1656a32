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
mod mode;
mod settles;
mod signals;
mod slots;
mod start;
mod stream;
mod subscription;
pub mod tail;
mod work_queue;

pub use error::SubscribeError;
pub use start::Start;
pub use stream::Item;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use self::acks::AckCoalescer;
use self::mode::{Ephemeral, Exclusive, Mode, Shared};
use self::settles::SettleCoalescer;
use self::signals::Signals;
use self::slots::Slots;
use self::stream::Stream;
use self::subscription::Subscription;
use self::tail::{SharedRecord, Tail};
use crate::config::SubscriptionConfig;
use crate::log::{
    ConsumerInfo, ConsumerSettings, Deleted, DeliveryMode, EventLog, LogError, Position,
};
use crate::tasks::Tasks;

/// What a subscription delivers: records, and what the stream is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The next record, shared with the tail window and the topic's other streams.
    Record {
        /// The record.
        record: Arc<SharedRecord>,
        /// Which delivery to this consumer it is: 1 first, 2, 3... redeliveries.
        attempt: u32,
    },
    /// The stream is alive and idle; where the topic and the consumer stand, and why
    /// nothing comes when something holds it up.
    Heartbeat {
        /// The topic's head.
        head: i64,
        /// The consumer's committed offset (0 for ephemeral subscriptions).
        committed: i64,
        /// Records this stream delivered and that are not settled.
        in_flight: usize,
        /// The stream waits for acks: it holds `max_in_flight` records.
        at_max_in_flight: bool,
        /// The shared consumer's window of unsettled records is full: nothing new is
        /// dispatched until its oldest record settles.
        window_full: bool,
    },
    /// This stream holds the durable consumer and delivers after `committed`.
    Attached {
        /// The committed offset delivery continues after.
        committed: i64,
        /// The consumer's seek epoch: acks should carry it.
        epoch: i64,
    },
    /// Another subscriber holds the consumer; this stream waits to take over.
    Standby,
    /// Everything up to `head` was delivered since the stream (re)started; new
    /// records follow as they commit.
    CaughtUp {
        /// The head reached.
        head: i64,
    },
    /// A Seek moved the consumer: what follows starts after `committed`.
    Repositioned {
        /// The committed offset set by the Seek.
        committed: i64,
        /// The new seek epoch: acks of records delivered before it are stale.
        epoch: i64,
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
    /// The settings a new consumer gets, and a mode an existing one must have; `None`
    /// joins an existing consumer as it is (a new one is exclusive).
    pub config: Option<ConsumerSettings>,
}

/// The engine shared by all RPCs of one server.
pub struct Engine {
    log: EventLog,
    tail: Arc<Tail>,
    config: SubscriptionConfig,
    signals: Arc<Signals>,
    acks: AckCoalescer,
    settles: SettleCoalescer,
    slots: Arc<Slots>,
    tasks: Tasks,
}

impl Engine {
    /// Starts the engine, its notification listener and its head refresher on
    /// `tasks`. `tail` must be the sink the log announces its commits to.
    pub fn start(
        log: EventLog,
        tail: Arc<Tail>,
        config: SubscriptionConfig,
        tasks: &Tasks,
    ) -> Self {
        let signals = Arc::new(Signals::default());
        let acks = AckCoalescer::new(log.clone(), Arc::clone(&signals), tasks.tracker());
        let settles = SettleCoalescer::new(log.clone(), tasks.tracker());
        tasks.spawn(listener::run(
            log.clone(),
            Arc::clone(&tail),
            Arc::clone(&signals),
            tasks.token(),
        ));
        tail.spawn_refresher(log.clone(), config.heartbeat_interval, tasks);
        Self {
            slots: Slots::new(
                config.max_subscriptions,
                config.max_subscriptions_per_connection,
            ),
            log,
            tail,
            config,
            signals,
            acks,
            settles,
            tasks: tasks.clone(),
        }
    }

    /// Opens a subscription: sets up the consumer (or start point) now, so bad requests
    /// fail at once, and returns the channel its task delivers into.
    pub async fn subscribe(
        &self,
        params: SubscribeParams,
        peer: Option<SocketAddr>,
    ) -> Result<mpsc::Receiver<Item>, SubscribeError> {
        if self.tasks.is_stopping() {
            return Err(SubscribeError::ShuttingDown);
        }
        let slot = self.slots.take(peer)?;
        self.log.ensure_topic(&params.topic).await?;
        // Watch before reading the head: a commit in between then moves the watch.
        let head_watch = self.tail.heads().watch(&params.topic);
        let head = self.head(&params.topic).await?;
        let (tx, rx) = mpsc::channel(self.config.channel_capacity);
        let stream = Stream {
            log: self.log.clone(),
            tail: Arc::clone(&self.tail),
            config: self.config,
            topic: params.topic.clone(),
            types: params.types,
            tx,
            token: self.tasks.token(),
            head: head_watch,
            next: 1,
            catching_up: true,
            _slot: slot,
        };
        let topic = params.topic;
        match params.consumer {
            Some(name) => {
                let wanted = params.config.as_ref();
                let settings = self
                    .consumer_for(&topic, &name, params.start, head, wanted)
                    .await?;
                let signals = Arc::clone(&self.signals);
                if !settings.mode.is_shared() {
                    let mode = Exclusive::new(name, &topic, signals, params.max_in_flight);
                    self.spawn(stream, mode);
                } else if stream.types.is_empty() {
                    let mode = Shared::new(name, &topic, signals, params.max_in_flight);
                    self.spawn(stream, mode);
                } else {
                    return Err(SubscribeError::TypesOnShared {
                        topic,
                        consumer: name,
                    });
                }
            }
            None => {
                let after = start::committed_for(&self.log, &topic, params.start, head).await?;
                self.spawn(stream, Ephemeral { after });
            }
        }
        Ok(rx)
    }

    fn spawn<M: Mode>(&self, stream: Stream, mode: M) {
        self.tasks.spawn(Subscription { stream, mode }.run());
    }

    /// Creates the consumer at `start` with `wanted` settings (default: exclusive)
    /// unless it exists; an existing consumer resumes after its committed offset,
    /// wherever `start` points, and must have the mode `wanted` names. Returns its
    /// settings.
    async fn consumer_for(
        &self,
        topic: &str,
        name: &str,
        start: Start,
        head: i64,
        wanted: Option<&ConsumerSettings>,
    ) -> Result<ConsumerSettings, SubscribeError> {
        if let Some(stored) = self.log.consumer_settings(topic, name).await? {
            return match wanted {
                Some(w) if w.mode != stored.mode => Err(SubscribeError::ModeMismatch {
                    topic: topic.to_owned(),
                    consumer: name.to_owned(),
                    stored: stored.mode,
                    requested: w.mode,
                }),
                _ => Ok(stored),
            };
        }
        let committed = start::committed_for(&self.log, topic, start, head).await?;
        let settings = wanted.cloned().unwrap_or_default();
        self.log
            .create_consumer_with(topic, name, committed, &settings)
            .await?;
        // Another subscriber may have created it first, with other settings.
        Box::pin(self.consumer_for(topic, name, start, head, wanted)).await
    }

    /// Commits `offset` for a durable consumer and returns its position after that.
    /// With `epoch`, an ack from before a Seek (an older epoch) moves nothing.
    pub async fn ack(
        &self,
        topic: &str,
        consumer: Option<&str>,
        offset: i64,
        epoch: Option<i64>,
    ) -> Result<Position, SubscribeError> {
        let consumer = consumer.ok_or(SubscribeError::Ephemeral)?;
        // The known head avoids a query; a topic nobody watches here is read, so an
        // ack naming any topic adds nothing to memory.
        if self
            .tail
            .heads()
            .known(topic)
            .is_none_or(|known| offset > known)
        {
            let head = self.head(topic).await?;
            if offset > head {
                return Err(SubscribeError::AckPastHead {
                    topic: topic.to_owned(),
                    offset,
                    head,
                });
            }
        }
        match self.acks.ack(topic, consumer, offset, epoch).await? {
            Some((position, DeliveryMode::Exclusive)) => Ok(position),
            Some((_, mode)) => Err(SubscribeError::CumulativeAckOnShared {
                topic: topic.to_owned(),
                consumer: consumer.to_owned(),
                mode,
            }),
            None => Err(self.consumer_not_found(topic, consumer)),
        }
    }

    /// Moves a consumer (creating it if needed); an attached subscription follows.
    pub async fn seek(
        &self,
        topic: &str,
        consumer: &str,
        start: Start,
    ) -> Result<Position, SubscribeError> {
        let head = self.head(topic).await?;
        let committed = start::committed_for(&self.log, topic, start, head).await?;
        let position = self.log.seek(topic, consumer, committed).await?;
        self.signals.moved(topic, consumer, position);
        Ok(position)
    }

    /// Up to `limit` of the topic's consumers, by name after `after`.
    pub async fn list(
        &self,
        topic: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConsumerInfo>, SubscribeError> {
        self.head(topic).await?;
        Ok(self.log.list_consumers(topic, after, limit).await?)
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

    async fn head(&self, topic: &str) -> Result<i64, SubscribeError> {
        let head = self
            .log
            .head(topic)
            .await?
            .ok_or_else(|| LogError::TopicNotFound {
                topic: topic.to_owned(),
            })?;
        self.tail.heads().advance(topic, head);
        Ok(head)
    }

    fn consumer_not_found(&self, topic: &str, consumer: &str) -> SubscribeError {
        SubscribeError::ConsumerNotFound {
            topic: topic.to_owned(),
            consumer: consumer.to_owned(),
        }
    }
}
