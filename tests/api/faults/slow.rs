//! Slow and stuck consumers: a client that never reads and 200 that read one message
//! every 50 ms cost the server bounded memory, still get every record in order, and
//! never hold publishers up (their rates alone and beside the consumers are printed).

use std::time::{Duration, Instant};

use crate::helpers::probes::{live_leases, sql};
use crate::helpers::process::ServerProcess;
use crate::helpers::*;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tonic::transport::Channel;

const TOPIC: &str = "feed";
const PUBLISHERS: usize = 4;
const BATCH: usize = 5;
const PAYLOAD: usize = 1024;
const ALONE_FOR: Duration = Duration::from_secs(2);
const WITH_CONSUMERS_FOR: Duration = Duration::from_secs(5);
/// Slow subscriptions: half start at the beginning of the topic (catch-up), half at
/// its end (live tail); spread over connections so no connection's stream limit matters.
const SLOW: usize = 200;
const SLOW_PER_CONNECTION: usize = 20;
const SLOW_EVERY: Duration = Duration::from_millis(50);
/// Streams of the client that never reads: one durable (max_in_flight at its maximum,
/// so only backpressure holds it), one ephemeral.
const STUCK: usize = 2;
/// What one stream may cost the server, from its documented bound: one catch-up page
/// (500 records or about 1 MiB: 1 MiB), 16 queued records (1 KiB payload plus envelope,
/// held as a record and encoded: 16 x 2 KiB), and the HTTP/2 window's share the server
/// holds (hyper's per-stream send buffer, 400 KiB; the rest of the window is in flight
/// to the client); times 1.5 for allocator slack.
const BOUND_PER_STREAM_KIB: u64 = (1024 + 16 * 2 + 400) * 3 / 2;

fn blob() -> Event {
    Event {
        content_type: "application/octet-stream".to_owned(),
        data: Some(event::Data::BinaryData(vec![7; PAYLOAD])),
        ..event("blob", "")
    }
}

/// What the publishers did in one phase.
struct Published {
    /// Events published by each publisher (every publish answered, within [`WAIT`]).
    per_publisher: Vec<usize>,
    /// All of them per second, to print.
    rate: f64,
    /// The server's peak RSS meanwhile, in KiB.
    peak_rss_kib: u64,
}

/// Publishes batches from `PUBLISHERS` clients for `duration` (each publish must be
/// answered within [`WAIT`]). While they run, samples the server's RSS every 100 ms.
async fn publish_for(server: &ServerProcess, duration: Duration) -> Published {
    let mut publishers = JoinSet::new();
    let started = Instant::now();
    for _ in 0..PUBLISHERS {
        let mut client = server.client().await;
        publishers.spawn(async move {
            let mut published = 0;
            while started.elapsed() < duration {
                publish(&mut client, TOPIC, vec![blob(); BATCH]).await;
                published += BATCH;
            }
            published
        });
    }
    let mut peak = server.rss_kib();
    let mut samples = tokio::time::interval(Duration::from_millis(100));
    while started.elapsed() < duration {
        samples.tick().await;
        peak = peak.max(server.rss_kib());
    }
    let per_publisher = tokio::time::timeout(WAIT, publishers.join_all())
        .await
        .expect("publishers stop in time");
    peak = peak.max(server.rss_kib());
    let rate = per_publisher.iter().sum::<usize>() as f64 / started.elapsed().as_secs_f64();
    Published {
        per_publisher,
        rate,
        peak_rss_kib: peak,
    }
}

/// Reads one message per `SLOW_EVERY` until told to stop; checks records come in order
/// without a gap; returns how many records it read.
async fn read_slowly(
    mut stream: tonic::Streaming<SubscribeResponse>,
    mut stop: watch::Receiver<bool>,
) -> usize {
    let mut rate = tokio::time::interval(SLOW_EVERY);
    rate.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut records, mut last) = (0, None);
    loop {
        tokio::select! {
            _ = stop.changed() => return records,
            _ = rate.tick() => {}
        }
        if let subscribe_response::Message::Record(r) = next_message(&mut stream).await {
            if let Some(last) = last {
                assert_eq!(r.offset, last + 1, "skipped or reordered");
            }
            last = Some(r.offset);
            records += 1;
        }
    }
}

/// Opens the slow subscriptions; returns their reading tasks.
async fn open_slow(
    server: &ServerProcess,
    stop: &watch::Receiver<bool>,
) -> (JoinSet<usize>, Vec<Client<Channel>>) {
    let mut readers = JoinSet::new();
    let mut clients = Vec::new();
    for i in 0..SLOW {
        if i % SLOW_PER_CONNECTION == 0 {
            clients.push(server.client().await);
        }
        let start = if i % 2 == 0 {
            start_position::Position::Earliest(start_position::Earliest {})
        } else {
            start_position::Position::Latest(start_position::Latest {})
        };
        let req = SubscribeRequest {
            start: Some(StartPosition {
                position: Some(start),
            }),
            ..sub_req(TOPIC, "")
        };
        let stream = subscribe(clients.last_mut().unwrap(), req).await;
        readers.spawn(read_slowly(stream, stop.clone()));
    }
    (readers, clients)
}

/// 4 publishers of 1 KiB events run 2 s alone, then 5 s while 200 subscriptions read
/// one message every 50 ms (half catching up, half tailing) and one client never
/// reads: the server's RSS grows less than the documented per-stream bound allows,
/// every slow reader gets records in order, and no publisher is held up by the
/// consumers (every publish is answered, and each publisher published beside them).
/// The publish rates alone and beside the consumers are printed, not compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_stuck_consumers_cost_bounded_memory_and_never_hold_publishers_up() {
    let db_url = fresh_database().await;
    let server = ServerProcess::on_database(&db_url, &["--heartbeat-interval", "1s"]).await;
    let alone = publish_for(&server, ALONE_FOR).await;
    let before = server.rss_kib();

    let mut stuck_client = server.client().await;
    let stuck = vec![
        subscribe(
            &mut stuck_client,
            SubscribeRequest {
                max_in_flight: 100_000,
                ..sub_req(TOPIC, "stuck")
            },
        )
        .await,
        subscribe(&mut stuck_client, sub_req(TOPIC, "")).await,
    ];
    let (stop_tx, stop) = watch::channel(false);
    let reading_since = Instant::now();
    let (readers, slow_clients) = open_slow(&server, &stop).await;
    let opened = server.rss_kib();
    let loaded = publish_for(&server, WITH_CONSUMERS_FOR).await;
    let peak = loaded.peak_rss_kib;
    stop_tx.send(true).unwrap();
    let read_for = reading_since.elapsed();
    let reads = tokio::time::timeout(WAIT, readers.join_all())
        .await
        .expect("slow readers stop in time");
    drop((stuck, stuck_client, slow_clients));
    let db = sql(&db_url).await;
    let (leases, _) = settle(
        Duration::from_millis(50),
        || live_leases(&db),
        Vec::is_empty,
    )
    .await;
    let after = server.rss_kib();

    let streams = (SLOW + STUCK) as u64;
    let growth = peak.saturating_sub(before);
    let bound = BOUND_PER_STREAM_KIB * streams;
    let (min, max) = (reads.iter().min().unwrap(), reads.iter().max().unwrap());
    let mean = reads.iter().sum::<usize>() as f64 / reads.len() as f64;
    eprintln!(
        "publishers: {:.0} events/s alone, {:.0} events/s with {SLOW} slow and {STUCK} stuck streams ({:.0} %); events per publisher {:?} alone, {:?} beside them",
        alone.rate,
        loaded.rate,
        100.0 * loaded.rate / alone.rate,
        alone.per_publisher,
        loaded.per_publisher,
    );
    eprintln!(
        "server RSS {before} KiB before, {opened} KiB with the streams open, {peak} KiB peak, {after} KiB after they left: +{growth} KiB = {} KiB per stream (bound {BOUND_PER_STREAM_KIB} KiB per stream, {bound} KiB in all)",
        growth / streams
    );
    eprintln!(
        "records read per slow stream: min {min}, mean {mean:.0}, max {max} (one per {SLOW_EVERY:?} for at most {read_for:?}: {})",
        read_for.as_millis() / SLOW_EVERY.as_millis()
    );
    assert!(
        loaded.per_publisher.iter().all(|&n| n > 0),
        "a publisher got nothing published beside the consumers: {:?}",
        loaded.per_publisher
    );
    assert!(growth < bound, "RSS grew by {growth} KiB");
    assert!(*min > 0, "a slow stream got no record at all");
    assert!(leases.is_empty(), "leases still live: {leases:?}");
}
