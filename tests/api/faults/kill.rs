//! SIGKILL under publish load: every acknowledged event is stored exactly once, offsets
//! stay gapless, and a durable consumer resumes right after its committed offset, on a
//! shared PostgreSQL and on the server's private one (which outlives the server).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use crate::helpers::probes::sql;
use crate::helpers::process::ServerProcess;
use crate::helpers::*;
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tonic::transport::Channel;
use uuid::Uuid;

const TOPIC: &str = "orders";
const CONSUMER: &str = "audit";
const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 300;
const TOTAL: usize = PUBLISHERS * PER_PUBLISHER;
/// Each publisher sends at most one request per tick: the load lasts about 1.5 s, so
/// the kill, once a quarter of the events are acknowledged, lands in the middle of it.
const PACE: Duration = Duration::from_millis(5);
/// The server is killed once this many events are acknowledged: mid-load on any machine.
const KILL_AT_ACKED: usize = PUBLISHERS * PER_PUBLISHER / 4;
/// A failed attempt is retried once the server is replaced, or after this long if the
/// error had another cause (retry pacing, not a wait for anything).
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// What one publisher saw.
#[derive(Default)]
struct PublisherLog {
    /// Every acknowledged result, by id.
    acked: HashMap<Uuid, PublishResult>,
    /// Requests that needed more than one attempt.
    retried: usize,
    /// Results of retried requests that were already stored (the lost-reply case).
    duplicates: usize,
    /// Failed attempts.
    errors: usize,
}

/// Publishes one request until a server acknowledges it, always with the same ids:
/// on any error, reconnects (to the newest address once the server was replaced). The
/// caller bounds the whole: a publisher that never gets through fails the test there.
async fn publish_until_acked(
    conn: &mut Option<(String, Client<Channel>)>,
    addr: &mut watch::Receiver<String>,
    events: Vec<Event>,
    log: &mut PublisherLog,
) {
    let request = PublishRequest {
        topic: TOPIC.to_owned(),
        events,
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        if conn.is_none() {
            let current = addr.borrow_and_update().clone();
            if let Ok(client) = Client::connect(format!("http://{current}")).await {
                *conn = Some((current, client));
            }
        }
        let outcome = match conn.as_mut() {
            Some((_, client)) => client.publish(request.clone()).await.map_err(|_| ()),
            None => Err(()),
        };
        match outcome {
            Ok(reply) => {
                let results = reply.into_inner().results;
                assert_eq!(results.len(), request.events.len());
                for result in results {
                    assert!(
                        attempts > 1 || !result.duplicate,
                        "a fresh id was reported as a duplicate: {result:?}"
                    );
                    log.duplicates += usize::from(result.duplicate);
                    let id = result.id.parse().unwrap();
                    assert!(log.acked.insert(id, result).is_none(), "acked twice");
                }
                log.retried += usize::from(attempts > 1);
                return;
            }
            Err(()) => {
                log.errors += 1;
                *conn = None;
                // Wait for a new server (or briefly, if the error had another cause).
                let _ = tokio::time::timeout(RETRY_AFTER, addr.changed()).await;
            }
        }
    }
}

/// A publisher: `PER_PUBLISHER` single-event requests with client-made ids, paced.
async fn publisher(
    p: usize,
    mut addr: watch::Receiver<String>,
    acked: watch::Sender<usize>,
) -> PublisherLog {
    let mut log = PublisherLog::default();
    let mut conn = None;
    let mut pace = tokio::time::interval(PACE);
    pace.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for seq in 0..PER_PUBLISHER {
        pace.tick().await;
        let event = Event {
            id: Uuid::new_v4().to_string(),
            subject: format!("publisher-{p}/{seq}"),
            ..event("order.placed", r#"{"n": 1}"#)
        };
        publish_until_acked(&mut conn, &mut addr, vec![event], &mut log).await;
        acked.send_modify(|n| *n += 1);
    }
    log
}

/// What the durable consumer saw before its server died.
struct ConsumerLog {
    /// Highest offset delivered (they came 1, 2, 3, ... without a gap).
    delivered: i64,
    /// Highest committed offset an Ack confirmed.
    confirmed: i64,
}

/// Reads and acks every record until the stream (or an ack) fails.
async fn consume_until_cut(mut client: Client<Channel>) -> ConsumerLog {
    let mut stream = subscribe(&mut client, sub_req(TOPIC, CONSUMER)).await;
    let mut log = ConsumerLog {
        delivered: 0,
        confirmed: 0,
    };
    loop {
        let message = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("the stream moves or ends in time");
        let record = match message {
            Ok(Some(SubscribeResponse {
                message: Some(subscribe_response::Message::Record(r)),
            })) => r,
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return log,
        };
        assert_eq!(record.offset, log.delivered + 1, "skipped or reordered");
        log.delivered = record.offset;
        let ack = client.ack(AckRequest {
            topic: TOPIC.to_owned(),
            consumer: CONSUMER.to_owned(),
            offset: record.offset,
            ..Default::default()
        });
        match tokio::time::timeout(WAIT, ack).await.expect("ack in time") {
            Ok(reply) => log.confirmed = reply.into_inner().committed_offset,
            Err(_) => return log,
        }
    }
}

/// Runs the scenario: a consumer and the publishers on `first`, SIGKILL after
/// [`KILL_AT_ACKED`] events are acknowledged, `restart()` on the same data, everything
/// checked in SQL at `database_url`. Returns the restarted server.
async fn kill_under_load<F, Fut>(
    database_url: impl Fn() -> String,
    first: ServerProcess,
    restart: F,
) -> ServerProcess
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ServerProcess>,
{
    let consumer = tokio::spawn(consume_until_cut(first.client().await));
    let (addr_tx, addr_rx) = watch::channel(first.addr.clone());
    let (acked, mut acked_rx) = watch::channel(0);
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| tokio::spawn(publisher(p, addr_rx.clone(), acked.clone())))
        .collect();

    let loaded = acked_rx.wait_for(|&n| n >= KILL_AT_ACKED);
    tokio::time::timeout(WAIT, loaded)
        .await
        .expect("the load gets going")
        .unwrap();
    let acked_at_kill = *acked.borrow();
    first.kill().await;
    let killed_at = Instant::now();
    let restarted = restart().await;
    let restart_took = killed_at.elapsed();
    addr_tx.send(restarted.addr.clone()).unwrap();
    let before_crash = consumer.await.unwrap();
    let db = sql(&database_url()).await;
    // Nobody acks after the kill, so this is the committed offset the consumer resumes
    // from: at committed + 1, once its lease from the killed server ran out.
    let committed: i64 =
        sqlx::query_scalar("SELECT committed FROM consumers WHERE topic = $1 AND name = $2")
            .bind(TOPIC)
            .bind(CONSUMER)
            .fetch_one(&db)
            .await
            .unwrap();
    let mut client = restarted.client().await;
    // Room for every remaining record unacked (the default max_in_flight is 1000).
    let req = SubscribeRequest {
        max_in_flight: TOTAL as u32,
        ..sub_req(TOPIC, CONSUMER)
    };
    let mut stream = subscribe(&mut client, req).await;
    let first_again = next_record(&mut stream).await;
    let resumed_after = killed_at.elapsed();
    let finished = async {
        let mut logs = Vec::new();
        for p in publishers {
            logs.push(p.await.unwrap());
        }
        logs
    };
    let logs = tokio::time::timeout(WAIT, finished)
        .await
        .expect("every publisher gets all its events acknowledged by the restarted server");

    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as(r#"SELECT id, "offset" FROM events WHERE topic = $1 ORDER BY "offset""#)
            .bind(TOPIC)
            .fetch_all(&db)
            .await
            .unwrap();
    let acked: HashMap<Uuid, &PublishResult> = logs
        .iter()
        .flat_map(|l| l.acked.iter())
        .map(|(id, r)| (*id, r))
        .collect();
    let stored_ids: HashSet<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let offsets: Vec<i64> = rows.iter().map(|(_, o)| *o).collect();
    let head: i64 = sqlx::query_scalar("SELECT head FROM topics WHERE name = $1")
        .bind(TOPIC)
        .fetch_one(&db)
        .await
        .unwrap();
    let sum = |f: fn(&PublisherLog) -> usize| logs.iter().map(f).sum::<usize>();
    eprintln!(
        "acked {} at the kill; restart took {restart_took:?}",
        acked_at_kill
    );
    eprintln!(
        "acked {}, found {} rows ({} distinct ids), head {head}; {} failed attempts, {} requests retried, {} retried results were duplicates (stored before the kill, reply lost)",
        acked.len(),
        rows.len(),
        stored_ids.len(),
        sum(|l| l.errors),
        sum(|l| l.retried),
        sum(|l| l.duplicates),
    );
    eprintln!(
        "consumer: delivered up to {}, ack confirmed up to {}, committed in SQL {committed}",
        before_crash.delivered, before_crash.confirmed
    );

    assert!(
        acked_at_kill > 0 && acked_at_kill < TOTAL,
        "the kill did not land under load ({acked_at_kill} of {TOTAL} acked)"
    );
    assert_eq!(
        acked.len(),
        TOTAL,
        "every event was acknowledged in the end"
    );
    assert_eq!(rows.len(), TOTAL, "stored exactly once each");
    assert_eq!(stored_ids.len(), rows.len(), "ids are unique");
    assert_eq!(
        stored_ids,
        acked.keys().copied().collect::<HashSet<_>>(),
        "the stored ids are exactly the acknowledged ones"
    );
    assert_eq!(offsets, (1..=TOTAL as i64).collect::<Vec<_>>(), "gapless");
    assert_eq!(head, TOTAL as i64);
    for (id, offset) in &rows {
        assert_eq!(acked[id].offset, *offset, "the acknowledged offset of {id}");
    }
    assert!(
        before_crash.delivered > 0,
        "the consumer saw nothing before the kill"
    );
    assert!(
        committed >= before_crash.confirmed,
        "a confirmed ack was lost: committed {committed} < {}",
        before_crash.confirmed
    );
    assert!(committed <= before_crash.delivered);

    eprintln!(
        "consumer resumed at offset {} {resumed_after:?} after the kill",
        first_again.offset
    );
    assert_eq!(first_again.offset, committed + 1);
    let rest = next_offsets(&mut stream, TOTAL - committed as usize - 1).await;
    assert_eq!(rest, (committed + 2..=TOTAL as i64).collect::<Vec<_>>());
    db.close().await;
    restarted
}

/// 4 publishers retry the same ids until acknowledged while the server is SIGKILLed
/// and replaced on the same database: every acknowledged id is stored exactly once
/// with its acknowledged offset, offsets are exactly 1..=N, no confirmed ack is lost,
/// and the durable consumer resumes at committed + 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_sigkill_under_publish_load_exactly_once() {
    let db = fresh_database().await;
    let flags = ["--consumer-lease", "1s", "--heartbeat-interval", "100ms"];
    let first = ServerProcess::on_database(&db, &flags).await;

    let restarted = kill_under_load(
        || db.clone(),
        first,
        || ServerProcess::on_database(&db, &flags),
    )
    .await;

    restarted.kill().await;
}

/// The same with the server's private PostgreSQL: it outlives the SIGKILLed server,
/// the next server adopts it (same postmaster), and nothing acknowledged is lost.
/// Default flags: the consumer's lease (10 s) must run out before it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_sigkill_under_publish_load_exactly_once_with_the_embedded_postgres()
 {
    let dir = DataDir::new();
    let first = ServerProcess::on_data_dir(dir.path()).await;
    let postmaster = dir.postmaster_pid();

    let restarted = kill_under_load(
        || dir.database_url(),
        first,
        || ServerProcess::on_data_dir(dir.path()),
    )
    .await;

    assert_eq!(
        dir.postmaster_pid(),
        postmaster,
        "the restarted server adopted the orphaned PostgreSQL"
    );
    restarted.signal(Signal::SIGTERM);
    assert_eq!(restarted.exit_code().await, Some(0));
}
