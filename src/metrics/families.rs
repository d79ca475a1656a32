//! The metric families one server exports, and the calls that move them. Every name
//! gets the `pulsebus_` prefix; counters end in `_total` (added by the encoder), time
//! is in seconds and sizes in bytes.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::labels::{
    Bounded, CallLabels, ConsumerLabels, MAX_LABELLED_CONSUMERS, MAX_LABELLED_TOPICS, Outcome,
    PublishLabels, RedeliveryLabels, RedeliveryReason, TopicLabel,
};

type GaugeF64 = Gauge<f64, AtomicU64>;

/// Every family of one server.
#[derive(Default)]
pub(super) struct Families {
    published_events: Family<PublishLabels, Counter>,
    publish_requests: Family<PublishLabels, Counter>,
    flushes: Flushes,
    delivered: Family<ConsumerLabels, Counter>,
    acks: Family<ConsumerLabels, Counter>,
    redeliveries: Family<RedeliveryLabels, Counter>,
    dead_lettered: Family<ConsumerLabels, Counter>,
    subscribers: Family<TopicLabel, Gauge>,
    pub grpc_requests: Family<CallLabels, Counter>,
    pub pool_connections: Gauge,
    pub pool_idle: Gauge,
    pub pool_max: Gauge,
    pub tail_window_bytes: Gauge,
    pub topic_head: Family<TopicLabel, Gauge>,
    pub committed: Family<ConsumerLabels, Gauge>,
    pub lag: Family<ConsumerLabels, Gauge>,
    pub oldest_unacked_age: Family<ConsumerLabels, GaugeF64>,
    pub stored_topics: Gauge,
    pub stored_consumers: Gauge,
    pub stored_read_errors: Counter,
}

/// The group-commit histograms: events per flush (1 to 8192) and its duration (0.25 ms
/// to 8 s).
struct Flushes {
    events: Histogram,
    duration: Histogram,
}

impl Default for Flushes {
    fn default() -> Self {
        Self {
            events: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            duration: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
        }
    }
}

impl Families {
    /// Registers every family under the `pulsebus_` prefix.
    fn register(&self, r: &mut Registry) {
        r.register(
            "published_events",
            "Events of Publish requests, by topic and outcome",
            self.published_events.clone(),
        );
        r.register(
            "publish_requests",
            "Publish requests, by topic and outcome (duplicate: every event was already stored)",
            self.publish_requests.clone(),
        );
        r.register(
            "append_batch_events",
            "Events written per group-commit flush (one transaction)",
            self.flushes.events.clone(),
        );
        r.register_with_unit(
            "append_duration",
            "Time to write one group-commit flush",
            Unit::Seconds,
            self.flushes.duration.clone(),
        );
        r.register("delivered_records", "Records sent to Subscribe streams (redeliveries included), by topic and consumer (\"\" for ephemeral)", self.delivered.clone());
        r.register(
            "acks",
            "Successful Ack requests, by topic and consumer",
            self.acks.clone(),
        );
        r.register(
            "redeliveries",
            "Records scheduled for redelivery, by topic, consumer and reason",
            self.redeliveries.clone(),
        );
        r.register(
            "dead_lettered_records",
            "Records moved to a dead-letter topic, by topic and consumer",
            self.dead_lettered.clone(),
        );
        r.register(
            "subscribers",
            "Subscribe streams attached to this server, by topic",
            self.subscribers.clone(),
        );
        r.register(
            "grpc_requests",
            "Finished gRPC calls, by method and status code (streams count when they end)",
            self.grpc_requests.clone(),
        );
        r.register(
            "db_pool_connections",
            "Open PostgreSQL connections of this server's pool",
            self.pool_connections.clone(),
        );
        r.register(
            "db_pool_idle_connections",
            "Idle PostgreSQL connections of this server's pool",
            self.pool_idle.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "Most PostgreSQL connections this server's pool opens",
            self.pool_max.clone(),
        );
        r.register_with_unit(
            "tail_window",
            "Approximate size of the recent records this server keeps in memory",
            Unit::Bytes,
            self.tail_window_bytes.clone(),
        );
        r.register(
            "topic_head_offset",
            "Offset of the newest event of a topic (from PostgreSQL)",
            self.topic_head.clone(),
        );
        r.register(
            "consumer_committed_offset",
            "A durable consumer's committed offset (from PostgreSQL)",
            self.committed.clone(),
        );
        r.register(
            "consumer_lag_records",
            "Head offset minus committed offset of a durable consumer (from PostgreSQL)",
            self.lag.clone(),
        );
        r.register_with_unit("consumer_oldest_unacked_age", "Age of the oldest record after a consumer's committed offset; 0 when caught up (from PostgreSQL)", Unit::Seconds, self.oldest_unacked_age.clone());
        r.register(
            "stored_topics",
            "Topics in PostgreSQL (the per-topic gauges cover at most the first 1000 by name)",
            self.stored_topics.clone(),
        );
        r.register("stored_consumers", "Durable consumers in PostgreSQL (the per-consumer gauges cover at most the first 5000)", self.stored_consumers.clone());
        r.register(
            "stored_read_errors",
            "Scrapes whose PostgreSQL read failed (the gauges then keep their last values)",
            self.stored_read_errors.clone(),
        );
    }
}

/// The handle every layer records with; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    pub(super) families: Arc<Families>,
    registry: Arc<Registry>,
    topics: Arc<Bounded>,
    consumers: Arc<Bounded>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh registry with every family at zero.
    pub fn new() -> Self {
        let families = Families::default();
        let mut registry = Registry::with_prefix("pulsebus");
        families.register(&mut registry);
        Self {
            families: Arc::new(families),
            registry: Arc::new(registry),
            topics: Arc::new(Bounded::new(MAX_LABELLED_TOPICS)),
            consumers: Arc::new(Bounded::new(MAX_LABELLED_CONSUMERS)),
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    fn topic(&self, topic: &str) -> String {
        self.topics.label(topic)
    }

    fn consumer(&self, topic: &str, consumer: Option<&str>) -> ConsumerLabels {
        let Some(consumer) = consumer else {
            return ConsumerLabels {
                topic: self.topic(topic),
                consumer: String::new(),
            };
        };
        let pair = self.consumers.label(&format!("{topic}\0{consumer}"));
        match pair.split_once('\0') {
            Some((topic, consumer)) => ConsumerLabels {
                topic: topic.to_owned(),
                consumer: consumer.to_owned(),
            },
            None => ConsumerLabels {
                topic: pair.clone(),
                consumer: pair,
            },
        }
    }

    /// A Publish request to `topic` ("" when its name is not valid) with `events`
    /// events ended with `outcome`; `duplicates` of the stored ones were duplicates.
    pub fn published(&self, topic: &str, outcome: Outcome, events: usize, duplicates: usize) {
        let topic = self.topic(topic);
        let count = |family: &Family<PublishLabels, Counter>, outcome: Outcome, n: usize| {
            let labels = PublishLabels {
                topic: topic.clone(),
                outcome: outcome.label(),
            };
            family.get_or_create(&labels).inc_by(n as u64);
        };
        let f = &self.families;
        let fresh = events - duplicates.min(events);
        if fresh > 0 || outcome != Outcome::Ok {
            count(&f.published_events, outcome, fresh);
        }
        if duplicates > 0 {
            count(&f.published_events, Outcome::Duplicate, duplicates);
        }
        let request = match outcome {
            Outcome::Ok if events > 0 && fresh == 0 => Outcome::Duplicate,
            other => other,
        };
        count(&f.publish_requests, request, 1);
    }

    /// A group-commit flush wrote `events` events in `took`.
    pub fn append_flushed(&self, events: usize, took: Duration) {
        let f = &self.families;
        f.flushes.events.observe(events as f64);
        f.flushes.duration.observe(took.as_secs_f64());
    }

    /// A record of `topic` went to a subscriber of `consumer` (`None`: ephemeral).
    pub fn delivered(&self, topic: &str, consumer: Option<&str>) {
        let labels = self.consumer(topic, consumer);
        self.families.delivered.get_or_create(&labels).inc();
    }

    /// An Ack request for `consumer` (`None`: ephemeral) succeeded.
    pub fn acked(&self, topic: &str, consumer: Option<&str>) {
        let labels = self.consumer(topic, consumer);
        self.families.acks.get_or_create(&labels).inc();
    }

    /// `records` records of `consumer` will go out again, for `reason`.
    pub fn redelivered(&self, topic: &str, consumer: &str, reason: RedeliveryReason, records: u64) {
        if records == 0 {
            return;
        }
        let ConsumerLabels { topic, consumer } = self.consumer(topic, Some(consumer));
        let labels = RedeliveryLabels {
            topic,
            consumer,
            reason: reason.label(),
        };
        self.families
            .redeliveries
            .get_or_create(&labels)
            .inc_by(records);
    }

    /// `records` records of `consumer` were dead-lettered.
    pub fn dead_lettered(&self, topic: &str, consumer: &str, records: u64) {
        if records == 0 {
            return;
        }
        let labels = self.consumer(topic, Some(consumer));
        self.families
            .dead_lettered
            .get_or_create(&labels)
            .inc_by(records);
    }

    /// A subscriber of `topic` attached; it counts until the guard is dropped.
    pub fn attached(&self, topic: &str) -> Attached {
        let label = TopicLabel {
            topic: self.topic(topic),
        };
        self.families.subscribers.get_or_create(&label).inc();
        Attached {
            families: Arc::clone(&self.families),
            label,
        }
    }
}

/// One attached subscriber, counted in `pulsebus_subscribers` while it lives.
pub struct Attached {
    families: Arc<Families>,
    label: TopicLabel,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.families.subscribers.get_or_create(&self.label).dec();
    }
}
