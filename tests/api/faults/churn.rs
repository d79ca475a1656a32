//! Churn: thousands of Subscribe calls cancelled every way a client can cancel them
//! (before the reply, right after opening, after a record, by closing the connection,
//! by losing the TCP connection) leave no lease, task, thread or database session behind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::probes::{Proxy, live_leases, open_fds, sessions, sql, threads};
use crate::helpers::process::ServerProcess;
use crate::helpers::*;
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

const TOPIC: &str = "churn";
const SHARED: &str = "shared";
/// Subscribe calls in all, `WORKERS` at a time.
const SUBSCRIPTIONS: usize = 2000;
const WORKERS: usize = 16;
/// The in-process variant shares the test's CPU with its server: fewer calls.
const IN_PROCESS_SUBSCRIPTIONS: usize = 600;
/// The server's pool (`--db-max-connections`, default 16).
const POOL: i64 = 16;
/// The consumer lease: longer than any test, so a lease can only end by its server
/// releasing it (as the task notices its client left), never by running out. A leaked
/// lease then stays live for the rest of the test, where the checks see it.
const LEASE: Duration = Duration::from_secs(3600);
/// What the server's memory may keep after the churn (allocator slack).
const RSS_GROWTH_BOUND_KIB: u64 = 32 * 1024;
/// How often the conditions only SQL or /proc can observe are re-checked.
const PROBE_EVERY: Duration = Duration::from_millis(50);

/// How one Subscribe call is abandoned.
#[derive(Debug, Clone, Copy)]
enum Cancel {
    /// The call is dropped before (or while) the server answers.
    BeforeReply,
    /// The stream is dropped as soon as it is open.
    AtOnce,
    /// The stream is dropped after its first record.
    AfterRecord,
    /// A fresh connection with three streams is closed by dropping the channel.
    DropChannel,
    /// A fresh connection with three streams through a proxy loses its TCP connection.
    CutConnection,
}

/// What the topic holds: 50 events of 1 KiB, so each subscription that delivers
/// holds a 50 KiB page on the server (a leak of them would show in its memory).
fn stored_events() -> Vec<Event> {
    let event = Event {
        content_type: "application/octet-stream".to_owned(),
        data: Some(event::Data::BinaryData(vec![1; 1024])),
        ..event("lesson.published", "")
    };
    vec![event; 50]
}

async fn connect(addr: SocketAddr) -> Client<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let channel = tokio::time::timeout(WAIT, endpoint.connect())
        .await
        .expect("client connects in time")
        .expect("client connects");
    Client::new(channel)
}

/// The first message of a stream that must deliver one (records are stored).
async fn first_record(stream: &mut tonic::Streaming<SubscribeResponse>) {
    next_record(stream).await;
}

/// Opens three streams on `client` (ephemeral, the shared durable consumer, a consumer
/// of their own), reads a record from the ephemeral one and returns them all open.
async fn three_streams(
    client: &mut Client<Channel>,
    own: &str,
) -> Vec<tonic::Streaming<SubscribeResponse>> {
    let mut ephemeral = subscribe(client, sub_req(TOPIC, "")).await;
    let shared = subscribe(client, sub_req(TOPIC, SHARED)).await;
    let mut own = subscribe(client, sub_req(TOPIC, own)).await;
    first_record(&mut ephemeral).await;
    first_record(&mut own).await;
    vec![ephemeral, shared, own]
}

/// One abandoned Subscribe call (or three, for the connection-level cancels).
async fn churn_once(server: SocketAddr, client: &mut Client<Channel>, i: usize, rng: &mut Rng) {
    let consumer = match rng.below(5) {
        0 | 1 => String::new(),
        2 => SHARED.to_owned(),
        _ => format!("own-{i}"),
    };
    let cancel = match rng.below(10) {
        0 | 1 => Cancel::BeforeReply,
        2..=4 => Cancel::AtOnce,
        5..=7 => Cancel::AfterRecord,
        8 => Cancel::DropChannel,
        _ => Cancel::CutConnection,
    };
    match cancel {
        Cancel::BeforeReply => {
            let within = Duration::from_micros(rng.below(3000) as u64);
            let _ = tokio::time::timeout(within, client.subscribe(sub_req(TOPIC, &consumer))).await;
        }
        Cancel::AtOnce => drop(subscribe(client, sub_req(TOPIC, &consumer)).await),
        // A standby of the shared consumer gets a record only once it takes over, so
        // these also pass the shared lease from hand to hand.
        Cancel::AfterRecord => {
            let mut stream = subscribe(client, sub_req(TOPIC, &consumer)).await;
            first_record(&mut stream).await;
        }
        Cancel::DropChannel => {
            let mut own = connect(server).await;
            let streams = three_streams(&mut own, &format!("own-{i}")).await;
            drop(own);
            drop(streams);
        }
        Cancel::CutConnection => {
            let proxy = Proxy::start(server).await;
            let mut own = connect(proxy.addr).await;
            let streams = three_streams(&mut own, &format!("own-{i}")).await;
            proxy.cut().await;
            drop(streams);
        }
    }
}

/// Runs `n` abandoned calls with `WORKERS` at a time; returns how long it took. Every
/// step of a call is bounded by [`WAIT`], so a hung call fails the test.
async fn churn(server: SocketAddr, n: usize, seed_from: &mut Rng) -> Duration {
    let started = Instant::now();
    let next = Arc::new(Mutex::new(0..n));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let next = Arc::clone(&next);
        let mut rng = Rng::new(seed_from.next_u64());
        let mut client = connect(server).await;
        workers.spawn(async move {
            loop {
                let Some(i) = next.lock().await.next() else {
                    return;
                };
                churn_once(server, &mut client, i, &mut rng).await;
            }
        });
    }
    workers.join_all().await;
    started.elapsed()
}

/// Waits until no lease is live: with [`LEASE`] longer than the test, only releases
/// end leases, so a lease still live after [`WAIT`] leaked. Returns how long it took.
async fn every_lease_released(db: &sqlx::PgPool) -> Duration {
    let (leases, took) = settle(PROBE_EVERY, || live_leases(db), Vec::is_empty).await;
    assert!(leases.is_empty(), "leaked leases: {leases:?}");
    took
}

/// The shared consumer is attachable again: a new subscriber gets its first record
/// (not only heartbeats), and its lease is then the only live one. Returns the open
/// stream and how long the record took to come.
async fn attach_again(
    client: &mut Client<Channel>,
    db: &sqlx::PgPool,
) -> (tonic::Streaming<SubscribeResponse>, Duration) {
    let started = Instant::now();
    let mut stream = subscribe(client, sub_req(TOPIC, SHARED)).await;
    let record = next_record(&mut stream).await;
    let took = started.elapsed();
    assert_eq!(record.offset, 1, "nothing was ever acked");
    assert_eq!(
        live_leases(db).await,
        [format!("{TOPIC}/{SHARED}")],
        "the new subscriber holds the only live lease"
    );
    (stream, took)
}

/// 2000 Subscribe calls (ephemeral, one shared durable consumer, consumers of their
/// own) abandoned before the reply, at once, after a record, by dropping the channel or
/// by cutting the TCP connection, 16 at a time, against a server process: afterwards
/// every lease is released (with a 1 h lease, none can have run out instead), the
/// shared consumer is attachable again and its new subscriber holds the only live
/// lease, the server holds no more database sessions than its pool, and its threads,
/// file descriptors and memory are back near where they started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_cancelled_subscriptions_leak_nothing() {
    let db_url = fresh_database().await;
    let lease = format!("{}s", LEASE.as_secs());
    let server = ServerProcess::on_database(
        &db_url,
        &["--heartbeat-interval", "100ms", "--consumer-lease", &lease],
    )
    .await;
    let addr: SocketAddr = server.addr.parse().unwrap();
    let mut client = server.client().await;
    publish(&mut client, TOPIC, stored_events()).await;
    let db = sql(&db_url).await;
    let mut rng = Rng::from_env_or_random("churn");
    let (rss_before, threads_before, fds_before) = (
        server.rss_kib(),
        threads(server.pid()),
        open_fds(server.pid()),
    );

    let took = churn(addr, SUBSCRIPTIONS, &mut rng).await;
    let (rss_peak, threads_peak) = (server.rss_kib(), threads(server.pid()));
    let release_took = every_lease_released(&db).await;
    let (mut stream, attach_took) = attach_again(&mut client, &db).await;
    let (fds_after, fds_took) = settle(
        PROBE_EVERY,
        || async { open_fds(server.pid()) },
        |fds| *fds <= fds_before + POOL as usize + 4,
    )
    .await;
    let db_sessions = sessions(&db).await;
    let (rss_after, threads_after) = (server.rss_kib(), threads(server.pid()));

    eprintln!("{SUBSCRIPTIONS} cancelled subscriptions in {took:?} ({WORKERS} at a time)");
    eprintln!(
        "every lease released {release_took:?} after the churn; shared consumer's first record {attach_took:?} after subscribing again"
    );
    eprintln!("database sessions {db_sessions} (pool {POOL} + the test's own)");
    eprintln!(
        "server RSS {rss_before} KiB before, {rss_peak} KiB right after the churn, {rss_after} KiB at the end; threads {threads_before} -> {threads_peak} -> {threads_after}; fds {fds_before} -> {fds_after} (settled in {fds_took:?})"
    );
    assert!(db_sessions <= POOL + 2, "{db_sessions} sessions");
    assert!(
        fds_after <= fds_before + POOL as usize + 4,
        "file descriptors leaked: {fds_before} -> {fds_after}"
    );
    assert!(
        threads_after <= threads_before + 8,
        "threads: {threads_before} -> {threads_after}"
    );
    // Every subscription is gone; what stays is allocator slack, not per-stream state
    // (the ~1600 calls that got records each had a 50 KiB page: leaked, 80 MiB).
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_BOUND_KIB,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    let next = next_record(&mut stream).await;
    assert_eq!(next.offset, 2, "the reattached stream goes on in order");
}

/// The same churn (600 calls: the server shares the test's CPU) against an in-process
/// server, whose tasks the test can count: every lease is released (1 h lease), the
/// shared consumer is attachable again with the only live lease, and once that last
/// stream is closed too the runtime is back to the tasks it had before, so no
/// subscription task outlived its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_subscriptions_leave_no_task_behind_in_process() {
    let server = TestServer::start_with(|c| {
        c.subscriptions.heartbeat_interval = Duration::from_millis(100);
        c.subscriptions.consumer_lease = LEASE;
    })
    .await;
    let mut client = server.client().await;
    publish(&mut client, TOPIC, stored_events()).await;
    let db = sql(&server.database_url).await;
    let mut rng = Rng::from_env_or_random("churn in process");
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();

    let took = churn(server.addr, IN_PROCESS_SUBSCRIPTIONS, &mut rng).await;
    let tasks_peak = metrics.num_alive_tasks();
    let release_took = every_lease_released(&db).await;
    let (stream, attach_took) = attach_again(&mut client, &db).await;
    let tasks_attached = metrics.num_alive_tasks();
    drop(stream);
    let (tasks_after, tasks_took) = settle(
        PROBE_EVERY,
        || async { metrics.num_alive_tasks() },
        |&n| n <= tasks_before,
    )
    .await;

    eprintln!(
        "{IN_PROCESS_SUBSCRIPTIONS} cancelled subscriptions in {took:?}; every lease released {release_took:?} after; shared consumer's first record {attach_took:?} after subscribing again"
    );
    eprintln!(
        "runtime tasks {tasks_before} before, {tasks_peak} right after the churn, {tasks_attached} with the consumer attached again, {tasks_after} once it left (settled in {tasks_took:?})"
    );
    assert!(
        tasks_after <= tasks_before,
        "tasks leaked: {tasks_before} -> {tasks_after}"
    );
}
