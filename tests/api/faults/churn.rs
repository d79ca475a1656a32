//! Churn: thousands of Subscribe calls cancelled every way a client can cancel them
//! (before the reply, right after opening, after a record, by closing the connection,
//! by losing the TCP connection) leave no lease, task, thread or database session behind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::probes::{Proxy, live_leases, open_fds, sessions, settle, sql, threads};
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
/// A consumer whose lease leaked would stay taken for the lease (10 s by default, the
/// flag used here): attaching within this bound proves nothing leaked.
const ATTACH_BOUND: Duration = Duration::from_secs(3);
/// What the server's memory may keep after the churn (allocator slack).
const RSS_GROWTH_BOUND_KIB: u64 = 32 * 1024;
/// Leases are released by the server tasks as they notice their client left.
const RELEASE_BOUND: Duration = Duration::from_secs(3);

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
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
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

/// Runs `n` abandoned calls with `WORKERS` at a time; returns how long it took.
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
    tokio::time::timeout(Duration::from_secs(60), workers.join_all())
        .await
        .expect("the churn ends in time");
    started.elapsed()
}

/// The shared consumer is attachable at once: a new subscriber gets a record (not only
/// heartbeats) within [`ATTACH_BOUND`]. Returns the open stream and how long it took.
async fn attach_again(
    client: &mut Client<Channel>,
) -> (tonic::Streaming<SubscribeResponse>, Duration) {
    let started = Instant::now();
    let mut stream = subscribe(client, sub_req(TOPIC, SHARED)).await;
    let record = tokio::time::timeout(ATTACH_BOUND, next_record(&mut stream))
        .await
        .unwrap_or_else(|_| {
            panic!("the shared consumer was not attachable within {ATTACH_BOUND:?}: a lease leaked")
        });
    assert_eq!(record.offset, 1, "nothing was ever acked");
    (stream, started.elapsed())
}

/// 2000 Subscribe calls (ephemeral, one shared durable consumer, consumers of their
/// own) abandoned before the reply, at once, after a record, by dropping the channel or
/// by cutting the TCP connection, 16 at a time, against a server process: afterwards the
/// shared consumer is attachable at once, the only live lease is the new subscriber's,
/// the server holds no more database sessions than its pool, and its threads, file
/// descriptors and memory are back near where they started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_cancelled_subscriptions_leak_nothing() {
    let db_url = fresh_database().await;
    let server = ServerProcess::on_database(
        &db_url,
        &["--heartbeat-interval", "100ms", "--consumer-lease", "10s"],
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
    let (mut stream, attach_took) = attach_again(&mut client).await;
    let (leases, release_took) = settle(
        RELEASE_BOUND,
        Duration::from_millis(50),
        || live_leases(&db),
        |leases| leases.len() <= 1,
    )
    .await;
    let (fds_after, fds_took) = settle(
        RELEASE_BOUND,
        Duration::from_millis(50),
        || async { open_fds(server.pid()) },
        |fds| *fds <= fds_before + POOL as usize + 4,
    )
    .await;
    let db_sessions = sessions(&db).await;
    let (rss_after, threads_after) = (server.rss_kib(), threads(server.pid()));

    eprintln!("{SUBSCRIPTIONS} cancelled subscriptions in {took:?} ({WORKERS} at a time)");
    eprintln!(
        "shared consumer attached again in {attach_took:?}; live leases {leases:?} (settled in {release_took:?})"
    );
    eprintln!("database sessions {db_sessions} (pool {POOL} + the test's own)");
    eprintln!(
        "server RSS {rss_before} KiB before, {rss_peak} KiB right after the churn, {rss_after} KiB at the end; threads {threads_before} -> {threads_peak} -> {threads_after}; fds {fds_before} -> {fds_after} (settled in {fds_took:?})"
    );
    assert_eq!(leases, [format!("{TOPIC}/{SHARED}")], "leaked leases");
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
/// server, whose tasks the test can count: the shared consumer is attachable at once,
/// its lease is the only live one, and once that last stream is closed too the runtime
/// is back to the tasks it had before, so no subscription task outlived its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_subscriptions_leave_no_task_behind_in_process() {
    let server = TestServer::start_with(|c| {
        c.subscriptions.heartbeat_interval = Duration::from_millis(100);
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
    let (stream, attach_took) = attach_again(&mut client).await;
    let tasks_attached = metrics.num_alive_tasks();
    let (leases, _) = settle(
        RELEASE_BOUND,
        Duration::from_millis(50),
        || live_leases(&db),
        |leases| leases.len() <= 1,
    )
    .await;
    drop(stream);
    let (tasks_after, tasks_took) = settle(
        RELEASE_BOUND,
        Duration::from_millis(50),
        || async { metrics.num_alive_tasks() },
        |&n| n <= tasks_before,
    )
    .await;

    eprintln!(
        "{IN_PROCESS_SUBSCRIPTIONS} cancelled subscriptions in {took:?}; shared consumer attached again in {attach_took:?}"
    );
    eprintln!(
        "runtime tasks {tasks_before} before, {tasks_peak} right after the churn, {tasks_attached} with the consumer attached again, {tasks_after} once it left (settled in {tasks_took:?}); live leases {leases:?}"
    );
    assert!(
        tasks_after <= tasks_before,
        "tasks leaked: {tasks_before} -> {tasks_after}"
    );
    assert_eq!(leases, [format!("{TOPIC}/{SHARED}")], "leaked leases");
}
