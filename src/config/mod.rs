//! Configuration: every setting is a flag with an environment variable, documented in
//! `pulsebus serve --help`. Defaults suit a developer machine; each is written once,
//! as a constant below, and both clap and the `Default` impls use it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod replication;
mod subscriptions;

pub use replication::SyncCommit;
pub use subscriptions::SubscriptionConfig;

/// Defaults of the flags (durations in humantime form, as a user would type them).
mod defaults {
    pub const LISTEN: &str = "127.0.0.1:50051";
    pub const DATA_DIR: &str = ".pulsebus";
    pub const DB_MAX_CONNECTIONS: u32 = 16;
    pub const DB_TIMEOUT: &str = "5s";
    pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
    pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
    pub const MAX_BATCH_EVENTS: usize = 1000;
    pub const REQUEST_TIMEOUT: &str = "30s";
    pub const KEEPALIVE_INTERVAL: &str = "30s";
    pub const KEEPALIVE_TIMEOUT: &str = "10s";
    pub const HEARTBEAT_INTERVAL: &str = "5s";
    pub const CONSUMER_LEASE: &str = "10s";
    pub const MAX_SUBSCRIPTIONS: usize = 10_000;
    pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 1_000;
    pub const SHUTDOWN_TIMEOUT: &str = "10s";
    pub const MAX_UNSETTLED: i64 = 10_000;
    pub const RETENTION_INTERVAL: &str = "30s";
    pub const RETENTION_CONSUMER_HOLD: &str = "7days";
    pub const RETENTION_BATCH_EVENTS: i64 = 10_000;
    /// Records read per catch-up page (not a flag).
    pub const PAGE_SIZE: usize = 500;
    /// Shared catch-up reads kept (see `subscribe::tail::Catchup`).
    pub const CATCHUP_CACHE_BYTES: usize = crate::subscribe::tail::DEFAULT_CACHE_BYTES;
    /// Bytes (about) read per catch-up page (not a flag).
    pub const PAGE_BYTES: usize = 1024 * 1024;
    /// Records buffered between a subscription task and its gRPC stream (not a flag).
    pub const CHANNEL_CAPACITY: usize = 16;
}

/// A default duration, which is a valid humantime literal by construction.
fn duration(text: &str) -> Duration {
    humantime::parse_duration(text).expect("the defaults are valid durations")
}

/// Settings of `pulsebus serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address the gRPC server listens on.
    #[arg(long, env = "PULSEBUS_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// Address of the Prometheus `/metrics` HTTP listener; off unless set.
    #[arg(long, env = "PULSEBUS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub limits: Limits,

    #[command(flatten)]
    pub subscriptions: SubscriptionConfig,

    #[command(flatten)]
    pub connections: ConnectionConfig,

    #[command(flatten)]
    pub tls: TlsConfig,

    #[command(flatten)]
    pub topics: TopicDefaults,

    #[command(flatten)]
    pub retention: RetentionConfig,

    /// TOML file of bearer tokens (as SHA-256 hashes) and their per-topic permissions.
    /// When set, every EventBus call needs `authorization: Bearer <token>`; health and
    /// reflection stay open. See `pulsebus hash-token`.
    #[arg(long, env = "PULSEBUS_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,

    /// How long a graceful shutdown waits for in-flight requests before giving up.
    #[arg(long, env = "PULSEBUS_SHUTDOWN_TIMEOUT", default_value = defaults::SHUTDOWN_TIMEOUT, value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Where the database is, and how to talk to it.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseConfig {
    /// PostgreSQL URL, e.g. postgres://user:pass@host:5432/pulsebus. When unset, a
    /// private PostgreSQL is started from the machine's binaries under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the private PostgreSQL (used only without DATABASE_URL); its
    /// cluster is in DATA_DIR/postgres and its log in DATA_DIR/postgres/postgres.log.
    #[arg(long, env = "PULSEBUS_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: PathBuf,

    /// Most connections this server opens to PostgreSQL.
    #[arg(long, env = "PULSEBUS_DB_MAX_CONNECTIONS", default_value_t = defaults::DB_MAX_CONNECTIONS)]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before failing with UNAVAILABLE.
    #[arg(long, env = "PULSEBUS_DB_TIMEOUT", default_value = defaults::DB_TIMEOUT, value_parser = humantime::parse_duration)]
    pub db_timeout: Duration,

    /// What a commit waits for before pulsebus answers OK, pinned on each of its
    /// PostgreSQL sessions (a role or database default cannot weaken it). `on` and
    /// `remote_apply` wait for a synchronous standby's disk when
    /// `synchronous_standby_names` names one; `local` never waits for a standby.
    #[arg(long, env = "PULSEBUS_SYNCHRONOUS_COMMIT", value_enum, default_value_t = SyncCommit::On)]
    pub synchronous_commit: SyncCommit,

    /// Refuse to start unless acknowledged publishes survive a failover: PostgreSQL
    /// must name a synchronous standby (`synchronous_standby_names`) and
    /// --synchronous-commit must wait for it. Without this flag, pulsebus warns.
    #[arg(long, env = "PULSEBUS_REQUIRE_SYNC_REPLICATION", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub require_sync_replication: bool,
}

/// Size limits on what clients may send.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// Largest encoded event accepted, in bytes.
    #[arg(long, env = "PULSEBUS_MAX_EVENT_BYTES", default_value_t = defaults::MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,

    /// Largest encoded request accepted, in bytes.
    #[arg(long, env = "PULSEBUS_MAX_REQUEST_BYTES", default_value_t = defaults::MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,

    /// Most events in one Publish request.
    #[arg(long, env = "PULSEBUS_MAX_BATCH_EVENTS", default_value_t = defaults::MAX_BATCH_EVENTS)]
    pub max_batch_events: usize,
}

/// Topics that Publish or Subscribe name before anyone created them.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct TopicDefaults {
    /// Create unknown topics on first publish or subscribe (false: NOT_FOUND, topics
    /// come from CreateTopic only).
    #[arg(long, env = "PULSEBUS_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Retention age of auto-created topics (unset: keep forever).
    #[arg(long, env = "PULSEBUS_DEFAULT_RETENTION_AGE", value_parser = humantime::parse_duration)]
    pub default_retention_age: Option<Duration>,

    /// Most events kept per auto-created topic (unset: no limit).
    #[arg(long, env = "PULSEBUS_DEFAULT_RETENTION_EVENTS", value_parser = clap::value_parser!(i64).range(1..))]
    pub default_retention_events: Option<i64>,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        Self {
            auto_create_topics: true,
            default_retention_age: None,
            default_retention_events: None,
        }
    }
}

impl TopicDefaults {
    /// The log's policy for unknown topics.
    pub fn policy(&self) -> crate::log::TopicPolicy {
        crate::log::TopicPolicy {
            auto_create: self.auto_create_topics,
            defaults: crate::log::TopicConfig {
                retention_age: self.default_retention_age,
                retention_events: self.default_retention_events,
                max_event_bytes: None,
            },
        }
    }
}

/// The retention sweeper, which removes the events each topic's config no longer keeps.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RetentionConfig {
    /// How often a sweep runs (one replica at a time sweeps; 0 turns sweeping off on
    /// this server).
    #[arg(long, env = "PULSEBUS_RETENTION_INTERVAL", default_value = defaults::RETENTION_INTERVAL, value_parser = humantime::parse_duration)]
    pub retention_interval: Duration,

    /// Retention waits for a topic's durable consumers to commit past an event, but
    /// only until the event is this old; then it goes anyway and a consumer still
    /// behind it skips to the first retained offset (0: never wait).
    #[arg(long, env = "PULSEBUS_RETENTION_CONSUMER_HOLD", default_value = defaults::RETENTION_CONSUMER_HOLD, value_parser = humantime::parse_duration)]
    pub retention_consumer_hold: Duration,

    /// Most events one retention transaction removes: small enough that an append
    /// never waits long behind it.
    #[arg(long, env = "PULSEBUS_RETENTION_BATCH_EVENTS", default_value_t = defaults::RETENTION_BATCH_EVENTS, value_parser = clap::value_parser!(i64).range(1..))]
    pub retention_batch_events: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            retention_interval: duration(defaults::RETENTION_INTERVAL),
            retention_consumer_hold: duration(defaults::RETENTION_CONSUMER_HOLD),
            retention_batch_events: defaults::RETENTION_BATCH_EVENTS,
        }
    }
}

/// TLS for the gRPC listener; plaintext when no certificate is given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsConfig {
    /// PEM certificate chain of the server; with --tls-key, the listener speaks TLS.
    #[arg(long, env = "PULSEBUS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of the server certificate.
    #[arg(long, env = "PULSEBUS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate: clients must present a certificate it signed (mutual TLS).
    #[arg(long, env = "PULSEBUS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Client connections: timeouts and liveness checks.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ConnectionConfig {
    /// Longest a unary call may take (a stream's lifetime is not limited).
    #[arg(long, env = "PULSEBUS_REQUEST_TIMEOUT", default_value = defaults::REQUEST_TIMEOUT, value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// How often idle connections are pinged (HTTP/2 keepalive), so the streams of a
    /// client that vanished end and its consumers are released.
    #[arg(long, env = "PULSEBUS_KEEPALIVE_INTERVAL", default_value = defaults::KEEPALIVE_INTERVAL, value_parser = humantime::parse_duration)]
    pub keepalive_interval: Duration,

    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[arg(long, env = "PULSEBUS_KEEPALIVE_TIMEOUT", default_value = defaults::KEEPALIVE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            request_timeout: duration(defaults::REQUEST_TIMEOUT),
            keepalive_interval: duration(defaults::KEEPALIVE_INTERVAL),
            keepalive_timeout: duration(defaults::KEEPALIVE_TIMEOUT),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: defaults::MAX_EVENT_BYTES,
            max_request_bytes: defaults::MAX_REQUEST_BYTES,
            max_batch_events: defaults::MAX_BATCH_EVENTS,
        }
    }
}

impl ServeConfig {
    /// Defaults for a server on `listen` using `database_url`; tests start from this.
    pub fn new(listen: SocketAddr, database_url: String) -> Self {
        Self {
            listen,
            metrics_listen: None,
            database: DatabaseConfig {
                database_url: Some(database_url),
                data_dir: PathBuf::from(defaults::DATA_DIR),
                db_max_connections: defaults::DB_MAX_CONNECTIONS,
                db_timeout: duration(defaults::DB_TIMEOUT),
                synchronous_commit: SyncCommit::On,
                require_sync_replication: false,
            },
            limits: Limits::default(),
            subscriptions: SubscriptionConfig::default(),
            connections: ConnectionConfig::default(),
            tls: TlsConfig::default(),
            topics: TopicDefaults::default(),
            retention: RetentionConfig::default(),
            auth_file: None,
            shutdown_timeout: duration(defaults::SHUTDOWN_TIMEOUT),
        }
    }
}

/// `scheme://user:secret@host/db` with the secret replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults clap applies are the ones `Default` gives, because both read the
    /// same constants.
    #[test]
    fn flag_defaults_and_default_impls_agree() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            subscriptions: SubscriptionConfig,
        }
        #[derive(clap::Parser)]
        struct TopicFlags {
            #[command(flatten)]
            topics: TopicDefaults,
        }
        let topics = TopicFlags::try_parse_from(["pulsebus"]).unwrap().topics;
        assert_eq!(topics.policy(), TopicDefaults::default().policy());
        let parsed = Flags::try_parse_from(["pulsebus"]).unwrap().subscriptions;
        let default = SubscriptionConfig::default();
        assert_eq!(parsed.heartbeat_interval, default.heartbeat_interval);
        assert_eq!(parsed.consumer_lease, default.consumer_lease);
        assert_eq!(parsed.page_size, default.page_size);

        #[derive(clap::Parser)]
        struct RetentionFlags {
            #[command(flatten)]
            retention: RetentionConfig,
        }
        let parsed = RetentionFlags::try_parse_from(["pulsebus"])
            .unwrap()
            .retention;
        let default = RetentionConfig::default();
        assert_eq!(parsed.retention_interval, default.retention_interval);
        assert_eq!(
            parsed.retention_consumer_hold,
            default.retention_consumer_hold
        );
        assert_eq!(
            parsed.retention_batch_events,
            default.retention_batch_events
        );
    }

    #[test]
    fn redact_url_hides_the_password_only() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/pulsebus"),
            "postgres://app:***@db:5432/pulsebus"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
