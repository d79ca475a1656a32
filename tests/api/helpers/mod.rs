//! The one test helper: a real pulsebus server on 127.0.0.1:0 over a fresh database.
//!
//! The database cluster is `DATABASE_URL` when set, else one throwaway cluster from the
//! local PostgreSQL binaries under `target/tmp/`, shared by every test process (the
//! first one starts it; `scripts/test` stops it at the end). Each server gets its own
//! `test_<uuid>` database, so tests run in parallel.
//!
//! With `TEST_LOG` set, the servers' logs go to the test's output: in-process servers
//! through a tracing subscriber on the test writer ([`init_test_log`]), server processes
//! by forwarding their stderr ([`process`]). `RUST_LOG` picks the level (default info).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use pulsebus::config::ServeConfig;
use pulsebus::embedded_pg::{PgCluster, cluster_url};
use pulsebus::proto::pulsebus::v1 as pb;
use pulsebus::proto::pulsebus::v1::event_bus_client::EventBusClient;
use pulsebus::server::Server;

pub mod data_dir;
pub mod health;
pub mod probes;
pub mod process;
pub mod replicated;
pub mod rng;

pub use data_dir::DataDir;
pub use health::wait_for_health;
pub use rng::Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub use pb::*;
pub use pulsebus::proto::pulsebus::v1::event_bus_client::EventBusClient as Client;

/// How long any wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// Re-evaluates `probe` every `every` until `done` accepts its value, for at most
/// [`WAIT`]; returns the last value (for the caller to assert on) and how long it took
/// (to print). For conditions that only a query can observe, with no event to await.
/// The bound only makes a hung test fail; it is not a performance bound.
pub async fn settle<T, F, Fut>(
    every: Duration,
    mut probe: F,
    done: impl Fn(&T) -> bool,
) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let started = Instant::now();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let value = probe().await;
        if done(&value) || started.elapsed() >= WAIT {
            return (value, started.elapsed());
        }
    }
}

/// Whether `TEST_LOG` asks for the servers' logs.
pub fn test_log() -> bool {
    std::env::var_os("TEST_LOG").is_some()
}

/// With `TEST_LOG` set, installs (once per process) a tracing subscriber that writes
/// this process's log, the in-process servers' included, to the test's output, which
/// the harness shows when the test fails (or always, with `--no-capture`).
pub fn init_test_log() {
    static INSTALLED: Once = Once::new();
    if !test_log() {
        return;
    }
    INSTALLED.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // Another subscriber (a test's own) may be in place already: keep it.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .with_ansi(false)
            .try_init();
    });
}

/// A running server and the database it owns.
pub struct TestServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when the config set `metrics_listen`.
    pub metrics_addr: Option<SocketAddr>,
    /// Its database, for SQL assertions and for a second server on the same data.
    pub database_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on a fresh database.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server on a fresh database, letting the test adjust its config.
    pub async fn start_with(adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::start_on(fresh_database().await, adjust).await
    }

    /// Starts another server on an existing database (a second replica).
    pub async fn start_on(database_url: String, adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        init_test_log();
        let mut config = ServeConfig::new("127.0.0.1:0".parse().unwrap(), database_url.clone());
        config.database.db_max_connections = 8;
        adjust(&mut config);
        let server = Server::build(config, &database_url)
            .await
            .expect("server builds");
        let addr = server.local_addr();
        let metrics_addr = server.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            server.run_until(shutdown).await.expect("server runs");
        });
        Self {
            addr,
            metrics_addr,
            database_url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A connected tonic client.
    pub async fn client(&self) -> EventBusClient<Channel> {
        EventBusClient::new(self.channel().await)
    }

    /// A connected channel, for the health and reflection clients.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("client connects")
    }

    /// A pool on the server's database, for assertions in SQL.
    pub async fn sql(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.database_url)
            .await
            .expect("test connects to its database")
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops in time")
                .expect("server task ends cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Creates an empty `test_<uuid>` database and returns its URL.
pub async fn fresh_database() -> String {
    init_test_log();
    let cluster = cluster().await;
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    pulsebus::db::create_database(&cluster.admin_url(), &name)
        .await
        .expect("test database is created");
    cluster.url(&name)
}

/// Where the test cluster is.
pub enum TestCluster {
    /// `DATABASE_URL`: an existing server, given by the user.
    External(String),
    /// The shared throwaway cluster on this port.
    Local(u16),
}

impl TestCluster {
    fn admin_url(&self) -> String {
        match self {
            Self::External(url) => url.clone(),
            Self::Local(port) => cluster_url(*port, "postgres"),
        }
    }

    fn url(&self, db: &str) -> String {
        match self {
            Self::External(url) => match url.rsplit_once('/') {
                Some((server, last)) if !last.contains('@') => {
                    let query = last
                        .split_once('?')
                        .map(|(_, q)| format!("?{q}"))
                        .unwrap_or_default();
                    format!("{server}/{db}{query}")
                }
                _ => format!("{url}/{db}"),
            },
            Self::Local(port) => cluster_url(*port, db),
        }
    }
}

static CLUSTER: OnceLock<u16> = OnceLock::new();

async fn cluster() -> TestCluster {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return TestCluster::External(url);
    }
    if let Some(port) = CLUSTER.get() {
        return TestCluster::Local(*port);
    }
    let port = tokio::task::spawn_blocking(|| *CLUSTER.get_or_init(start_test_cluster))
        .await
        .unwrap();
    TestCluster::Local(port)
}

/// The shared test cluster's settings: durability off (tests never crash PostgreSQL
/// itself), room for many parallel test servers, and `pg_stat_statements`, with which
/// tests count the statements a server ran in their database (see
/// [`probes::statements`]; room for the entries of every test database of a run).
const TEST_CLUSTER_SETTINGS: [(&str, &str); 7] = [
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "500"),
    ("shared_preload_libraries", "pg_stat_statements"),
    ("pg_stat_statements.max", "50000"),
    ("pg_stat_statements.track_utility", "off"),
];

/// Starts the shared test cluster, or adopts the one running; returns its port.
///
/// A cluster left running by an earlier run may have been started with other settings
/// (say, before pg_stat_statements was among them): it is then restarted with these.
/// Test processes take turns here (a file lock), so the first one to start does that
/// before any other uses the cluster.
fn start_test_cluster() -> u16 {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pulsebus-test-pg");
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::File::create(root.join("tests.lock")).unwrap();
    lock.lock().expect("the test cluster's lock");
    let cluster = TEST_CLUSTER_SETTINGS
        .iter()
        .fold(PgCluster::new(&root), |cluster, (name, value)| {
            cluster.map(|c| c.with_setting(name, value))
        })
        .expect("PostgreSQL binaries are installed");
    let port = cluster
        .ensure_running()
        .expect("the test PostgreSQL cluster starts");
    // What the running postmaster was started with: `"-c" "name=value"` per setting.
    let opts =
        std::fs::read_to_string(cluster.data_dir().join("postmaster.opts")).unwrap_or_default();
    let stale = TEST_CLUSTER_SETTINGS
        .iter()
        .any(|(name, value)| !opts.contains(&format!("\"{name}={value}\"")));
    if !stale {
        return port;
    }
    cluster
        .stop()
        .expect("the test cluster with old settings stops");
    cluster
        .ensure_running()
        .expect("the test PostgreSQL cluster starts again with the current settings")
}

/// An event with just a type and a JSON payload; tests fill in the rest.
pub fn event(event_type: &str, json: &str) -> Event {
    Event {
        r#type: event_type.to_owned(),
        source: "tests".to_owned(),
        content_type: "application/json".to_owned(),
        data: Some(event::Data::TextData(json.to_owned())),
        ..Default::default()
    }
}

/// Publishes `events` to `topic` and returns the results (panics on error, or if no
/// answer comes within [`WAIT`]).
pub async fn publish(
    client: &mut EventBusClient<Channel>,
    topic: &str,
    events: Vec<Event>,
) -> Vec<PublishResult> {
    let request = client.publish(PublishRequest {
        topic: topic.to_owned(),
        events,
    });
    tokio::time::timeout(WAIT, request)
        .await
        .expect("publish answers in time")
        .expect("publish succeeds")
        .into_inner()
        .results
}

/// Reads the whole topic in pages, from its first retained offset (panics on error).
pub async fn read_all(client: &mut EventBusClient<Channel>, topic: &str) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    loop {
        let from = records.last().map_or(0, |r| r.offset + 1);
        let page = client
            .read(ReadRequest {
                topic: topic.to_owned(),
                from_offset: from,
                limit: 1000,
                types: vec![],
            })
            .await
            .expect("read succeeds")
            .into_inner();
        if page.records.is_empty() {
            return records;
        }
        records.extend(page.records);
    }
}

/// A Subscribe request for `topic`; tests adjust the rest.
pub fn sub_req(topic: &str, consumer: &str) -> SubscribeRequest {
    SubscribeRequest {
        topic: topic.to_owned(),
        consumer: consumer.to_owned(),
        ..Default::default()
    }
}

/// Opens a subscription (panics on error, or if it is not open within [`WAIT`]).
pub async fn subscribe(
    client: &mut Client<Channel>,
    req: SubscribeRequest,
) -> tonic::Streaming<SubscribeResponse> {
    tokio::time::timeout(WAIT, client.subscribe(req))
        .await
        .expect("subscribe answers in time")
        .expect("subscribe succeeds")
        .into_inner()
}

/// The next message of the stream, within [`WAIT`].
pub async fn next_message(
    stream: &mut tonic::Streaming<SubscribeResponse>,
) -> subscribe_response::Message {
    let message = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message arrives in time");
    message
        .expect("the stream is healthy")
        .expect("the stream is open")
        .message
        .expect("a message body")
}

/// The next record, skipping heartbeats, within [`WAIT`] in all.
pub async fn next_record(stream: &mut tonic::Streaming<SubscribeResponse>) -> Record {
    let skip_heartbeats = async {
        loop {
            if let subscribe_response::Message::Record(r) = next_message(stream).await {
                return r;
            }
        }
    };
    tokio::time::timeout(WAIT, skip_heartbeats)
        .await
        .expect("a record arrives in time")
}

/// The next `n` records' offsets.
pub async fn next_offsets(stream: &mut tonic::Streaming<SubscribeResponse>, n: usize) -> Vec<i64> {
    let mut offsets = Vec::with_capacity(n);
    for _ in 0..n {
        offsets.push(next_record(stream).await.offset);
    }
    offsets
}

/// Waits for the next heartbeat and fails if a record comes first: with a short
/// heartbeat interval this proves the server had nothing (more) to deliver.
pub async fn expect_heartbeat(stream: &mut tonic::Streaming<SubscribeResponse>) -> Heartbeat {
    loop {
        match next_message(stream).await {
            subscribe_response::Message::Heartbeat(h) => return h,
            subscribe_response::Message::Record(r) => {
                panic!("expected a heartbeat, got record {}", r.offset)
            }
            // State messages (attached, standby, caught up, repositioned) may come first.
            _ => {}
        }
    }
}

/// Acks `offset` for `consumer` and returns the committed offset (within [`WAIT`]).
pub async fn ack(client: &mut Client<Channel>, topic: &str, consumer: &str, offset: i64) -> i64 {
    let request = client.ack(AckRequest {
        topic: topic.to_owned(),
        consumer: consumer.to_owned(),
        offset,
        seek_epoch: None,
        offsets: vec![],
    });
    tokio::time::timeout(WAIT, request)
        .await
        .expect("ack answers in time")
        .expect("ack succeeds")
        .into_inner()
        .committed_offset
}

/// `n` events of type `t` with empty JSON payloads.
pub fn events(t: &str, n: usize) -> Vec<Event> {
    vec![event(t, "{}"); n]
}

/// A server whose idle streams heartbeat every 100 ms and whose consumer leases last 1 s.
pub async fn quick_server() -> TestServer {
    TestServer::start_with(quick).await
}

/// Short heartbeat and lease, for tests that wait on them.
pub fn quick(c: &mut ServeConfig) {
    c.subscriptions.heartbeat_interval = Duration::from_millis(100);
    c.subscriptions.consumer_lease = Duration::from_secs(1);
}
