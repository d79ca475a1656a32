//! How subscriptions behave: the flags and tunables of the subscription engine.

use std::time::Duration;

use super::{defaults, duration};

/// How subscriptions behave (flags, and the tunables of the subscription engine).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SubscriptionConfig {
    /// How often an idle Subscribe stream gets a heartbeat.
    #[arg(long, env = "PULSEBUS_HEARTBEAT_INTERVAL", default_value = defaults::HEARTBEAT_INTERVAL, value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,

    /// Most open Subscribe streams on this server.
    #[arg(long, env = "PULSEBUS_MAX_SUBSCRIPTIONS", default_value_t = defaults::MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: usize,

    /// Most open Subscribe streams on one client connection.
    #[arg(
        long,
        env = "PULSEBUS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = defaults::MAX_SUBSCRIPTIONS_PER_CONNECTION
    )]
    pub max_subscriptions_per_connection: usize,

    /// How long a durable consumer's subscriber keeps its claim without renewing it:
    /// a standby takes over a crashed server's consumer within 1.25 times this.
    #[arg(long, env = "PULSEBUS_CONSUMER_LEASE", default_value = defaults::CONSUMER_LEASE, value_parser = humantime::parse_duration)]
    pub consumer_lease: Duration,

    /// Shared consumers: most records between a consumer's committed offset (its oldest
    /// unsettled record) and its newest delivery. This bounds each consumer's rows in
    /// PostgreSQL; at the limit nothing new is delivered until the oldest settles.
    #[arg(long, env = "PULSEBUS_MAX_UNSETTLED", default_value_t = defaults::MAX_UNSETTLED)]
    pub max_unsettled: i64,

    /// Bytes of catch-up reads kept for subscribers behind the tail window to share
    /// (0: each subscriber reads PostgreSQL alone).
    #[arg(long, env = "PULSEBUS_SHARED_CATCHUP_BYTES", default_value_t = defaults::CATCHUP_CACHE_BYTES)]
    pub shared_catchup_bytes: usize,

    /// Records read per catch-up page.
    #[arg(skip = defaults::PAGE_SIZE)]
    pub page_size: usize,

    /// Bytes (about) read per catch-up page.
    #[arg(skip = defaults::PAGE_BYTES)]
    pub page_bytes: usize,

    /// Records buffered between a subscription task and its gRPC stream.
    #[arg(skip = defaults::CHANNEL_CAPACITY)]
    pub channel_capacity: usize,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: duration(defaults::HEARTBEAT_INTERVAL),
            consumer_lease: duration(defaults::CONSUMER_LEASE),
            max_subscriptions: defaults::MAX_SUBSCRIPTIONS,
            max_subscriptions_per_connection: defaults::MAX_SUBSCRIPTIONS_PER_CONNECTION,
            max_unsettled: defaults::MAX_UNSETTLED,
            shared_catchup_bytes: defaults::CATCHUP_CACHE_BYTES,
            page_size: defaults::PAGE_SIZE,
            page_bytes: defaults::PAGE_BYTES,
            channel_capacity: defaults::CHANNEL_CAPACITY,
        }
    }
}
