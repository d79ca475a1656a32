//! PostgreSQL fails over under a running server (issue 16): given every host in
//! `DATABASE_URL`, pulsebus finds the promoted standby by itself; with a synchronous
//! standby, nothing it acknowledged is lost and no offset is taken twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::helpers::replicated::ReplicatedPair;
use crate::helpers::*;
use tonic::transport::Channel;
use uuid::Uuid;

/// Failover rounds of the kill test, each on a fresh pair with its own seed
/// (`PULSEBUS_FAILOVER_ROUNDS`, default 2).
fn rounds() -> u64 {
    std::env::var("PULSEBUS_FAILOVER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// Pause between two attempts of a publish that failed (retry pacing, not a wait for
/// anything: the loop ends on the first success).
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Publishes `event` until it is acknowledged, with the same id each time (at most
/// [`WAIT`]); the result, and how many attempts failed.
async fn publish_until_acked(
    client: &mut Client<Channel>,
    topic: &str,
    event: Event,
) -> (PublishResult, usize) {
    let request = PublishRequest {
        topic: topic.to_owned(),
        events: vec![event],
    };
    let mut failed = 0;
    let mut pace = tokio::time::interval(RETRY_PAUSE);
    let attempts = async {
        loop {
            pace.tick().await;
            match client.publish(request.clone()).await {
                Ok(reply) => return reply.into_inner().results.remove(0),
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                    failed += 1;
                }
            }
        }
    };
    let result = tokio::time::timeout(WAIT, attempts)
        .await
        .expect("a publish gets through in time");
    (result, failed)
}

fn numbered(topic: &str, n: usize) -> Event {
    Event {
        id: Uuid::new_v4().to_string(),
        subject: format!("{topic}/{n}"),
        ..event("grade.recorded", &format!(r#"{{"n": {n}}}"#))
    }
}

/// A clean switchover (fast stop of the primary, then promote): the server, given
/// both hosts, follows by itself; every event is there with its offset and bytes, new
/// offsets continue the old ones, and a durable consumer resumes after its ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_switchover_is_followed_without_loss_or_a_reused_offset() {
    let pair = ReplicatedPair::start().await;
    pair.create_database("switchover").await;
    let server = TestServer::start_on(pair.both_hosts_url("switchover"), |c| {
        c.database.db_timeout = Duration::from_secs(1);
    })
    .await;
    let mut client = server.client().await;
    let before: Vec<Event> = (1..=20).map(|n| numbered("t", n)).collect();
    publish(&mut client, "t", before.clone()).await;
    let mut stream = subscribe(&mut client, sub_req("t", "audit")).await;
    assert_eq!(
        next_offsets(&mut stream, 10).await,
        (1..=10).collect::<Vec<_>>()
    );
    ack(&mut client, "t", "audit", 10).await;
    let stored_before = read_all(&mut client, "t").await;
    drop(stream);

    pair.stop_primary().await;
    pair.promote_standby().await;
    let promoted = Instant::now();
    let (first, failed) = publish_until_acked(&mut client, "t", numbered("t", 21)).await;
    println!(
        "switchover: first publish acknowledged {:?} after the promotion ({failed} attempts failed)",
        promoted.elapsed()
    );
    assert_eq!(
        first.offset, 21,
        "the next offset continues the old primary's"
    );

    let stored = read_all(&mut client, "t").await;
    assert_eq!(stored.len(), 21);
    assert_eq!(
        stored[..20],
        stored_before[..],
        "the same events, offsets and bytes"
    );
    let mut stream = subscribe(&mut client, sub_req("t", "audit")).await;
    assert_eq!(
        next_record(&mut stream).await.offset,
        11,
        "resumes after its ack"
    );
}

/// Acks `offset` for `consumer` (panics on error).
async fn ack(client: &mut Client<Channel>, topic: &str, consumer: &str, offset: i64) {
    client
        .ack(AckRequest {
            topic: topic.to_owned(),
            consumer: consumer.to_owned(),
            offset,
            ..Default::default()
        })
        .await
        .expect("ack succeeds");
}

const TOPICS: [&str; 3] = ["grades", "badges", "quizzes"];
const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 40;

/// One publisher's acknowledged events: (topic, offset) -> the event sent.
type Acked = HashMap<(String, i64), Event>;

/// Publishes `PER_PUBLISHER` events round-robin over the topics, each until acked.
async fn publisher(
    mut client: Client<Channel>,
    p: usize,
    acked_count: tokio::sync::watch::Sender<usize>,
) -> Acked {
    let mut acked = Acked::new();
    for n in 0..PER_PUBLISHER {
        let topic = TOPICS[(p + n) % TOPICS.len()];
        let event = numbered(topic, p * PER_PUBLISHER + n);
        let (result, _) = publish_until_acked(&mut client, topic, event.clone()).await;
        assert_eq!(result.id, event.id);
        let earlier = acked.insert((topic.to_owned(), result.offset), event);
        assert!(earlier.is_none(), "two acks at {topic}/{}", result.offset);
        acked_count.send_modify(|c| *c += 1);
    }
    acked
}

/// What a durable consumer (of the Rust client) was handed: offset -> event id. A
/// redelivery (after a reconnect) must carry the same event as before.
async fn consumer(
    addr: std::net::SocketAddr,
    topic: &'static str,
    mut total: tokio::sync::watch::Receiver<Option<usize>>,
) -> HashMap<i64, String> {
    use pulsebus_client as pc;
    let client = pc::Client::connect(format!("http://{addr}")).unwrap();
    let mut consumer = client
        .consumer(pc::ConsumerOptions::new(topic, "audit"))
        .unwrap();
    let mut seen = HashMap::new();
    let everything = async {
        loop {
            if total.borrow().is_some_and(|n| seen.len() >= n) {
                return;
            }
            let message = tokio::select! {
                message = consumer.next() => message,
                _ = total.changed() => continue,
            };
            let message = message
                .expect("the consumer is open")
                .expect("the consumer works");
            let id = message.event().id.clone();
            if let Some(earlier) = seen.insert(message.offset(), id.clone()) {
                assert_eq!(earlier, id, "{topic}/{}: another event", message.offset());
            }
            let _ = message.ack().await; // an ack lost in the failover comes again
        }
    };
    tokio::time::timeout(WAIT, everything)
        .await
        .expect("the consumer gets every event");
    seen
}

/// 4 publishers on 3 topics and 2 durable consumers; the primary is killed
/// (postmaster and every backend at once) after a random number of acks, and the
/// synchronous standby promoted. Every acknowledged event is on the new primary at its
/// offset with its bytes, offsets are contiguous, nothing is stored twice, and no
/// consumer was ever handed a different event at an offset (they resume after their
/// committed offsets, at least once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_publishes_survive_killing_the_primary_with_a_synchronous_standby() {
    let mut rng = Rng::from_env_or_random("failover kill");
    for round in 0..rounds() {
        let kill_after = rng.between(1, PUBLISHERS * PER_PUBLISHER / 2);
        println!("round {round}: kill after {kill_after} acks");
        kill_under_load(kill_after).await;
    }
}

async fn kill_under_load(kill_after: usize) {
    let pair = ReplicatedPair::start().await;
    pair.create_database("killed").await;
    let server = TestServer::start_on(pair.both_hosts_url("killed"), |c| {
        c.database.db_timeout = Duration::from_secs(1);
        c.database.require_sync_replication = true;
    })
    .await;
    // Each consumer learns how many events its topic holds once the publishers are done.
    let consumers: Vec<_> = TOPICS[..2]
        .iter()
        .map(|topic| {
            let (total, totals) = tokio::sync::watch::channel(None);
            (total, tokio::spawn(consumer(server.addr, topic, totals)))
        })
        .collect();
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let client = server.client().await;
        publishers.push(tokio::spawn(publisher(client, p, count_tx.clone())));
    }
    tokio::time::timeout(WAIT, count_rx.wait_for(|n| *n >= kill_after))
        .await
        .expect("the publishers make progress")
        .unwrap();
    pair.kill_primary();
    pair.promote_standby().await;
    println!("killed the primary after {kill_after} acks, promoted the standby");

    let mut acked = Acked::new();
    for publisher in publishers {
        acked.extend(publisher.await.expect("a publisher finishes"));
    }
    assert_eq!(acked.len(), PUBLISHERS * PER_PUBLISHER);
    let mut client = server.client().await;
    let mut stored_by_topic = HashMap::new();
    for topic in TOPICS {
        let stored = read_all(&mut client, topic).await;
        stored_by_topic.insert(topic, stored.clone());
        let offsets: Vec<i64> = stored.iter().map(|r| r.offset).collect();
        assert_eq!(
            offsets,
            (1..=stored.len() as i64).collect::<Vec<_>>(),
            "{topic}: gapless"
        );
        let mine = acked.keys().filter(|(t, _)| t == topic).count();
        assert_eq!(
            stored.len(),
            mine,
            "{topic}: every stored event was acked once"
        );
        for record in stored {
            let sent = &acked[&(topic.to_owned(), record.offset)];
            let got = record.event.expect("an event");
            assert_eq!(
                got.id, sent.id,
                "{topic}/{}: the acked event",
                record.offset
            );
            assert_eq!(got.data, sent.data, "{topic}/{}: its bytes", record.offset);
        }
    }
    for (topic, (total, consumer)) in TOPICS[..2].iter().zip(consumers) {
        let stored = &stored_by_topic[topic];
        total.send_replace(Some(stored.len()));
        let seen = consumer.await.expect("a consumer finishes");
        for record in stored {
            let id = &record.event.as_ref().unwrap().id;
            let handed = seen.get(&record.offset);
            assert_eq!(
                handed,
                Some(id),
                "{topic}/{}: handed out as stored",
                record.offset
            );
        }
    }
}

/// The negative control: asynchronous replication, the walsender stalled, then the
/// primary killed and the standby promoted. The harness must see the acknowledged
/// events 6..=10 gone and offset 6 taken by a new event; and a consumer of the Rust
/// client that saw 1..=10 gets LOG_DIVERGED on its resubscribe (the client sends what
/// it saw last by itself), not the new event at an offset it already handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_asynchronous_failover_lost_acks_are_seen_and_a_consumer_gets_log_diverged() {
    use pulsebus_client as pc;
    use tonic_types::StatusExt;

    let pair = ReplicatedPair::start_async().await;
    pair.create_database("diverged").await;
    let server = TestServer::start_on(pair.both_hosts_url("diverged"), |c| {
        c.database.db_timeout = Duration::from_secs(1);
    })
    .await;
    let mut client = server.client().await;
    publish(
        &mut client,
        "t",
        (1..=5).map(|n| numbered("t", n)).collect(),
    )
    .await;
    let standby = pair.standby("diverged").await;
    let (replayed, _) = settle(
        Duration::from_millis(20),
        || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE topic = 't'")
                .fetch_one(&standby)
                .await
                .unwrap_or(0)
        },
        |n| *n == 5,
    )
    .await;
    assert_eq!(replayed, 5, "the standby has the first five");
    pair.stall_walsender().await;
    let lost = publish(
        &mut client,
        "t",
        (6..=10).map(|n| numbered("t", n)).collect(),
    )
    .await;

    let consumer_client = pc::Client::connect(format!("http://{}", server.addr)).unwrap();
    let mut consumer = consumer_client
        .consumer(pc::ConsumerOptions::new("t", "audit"))
        .unwrap();
    for expected in 1..=10 {
        let message = tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("a message in time")
            .expect("the consumer is open")
            .expect("the consumer works");
        assert_eq!(message.offset(), expected);
    }

    pair.kill_primary();
    pair.promote_standby().await;
    let (fresh, _) = publish_until_acked(&mut client, "t", numbered("t", 100)).await;
    let stored = read_all(&mut client, "t").await;
    let ids: Vec<&str> = stored
        .iter()
        .map(|r| r.event.as_ref().unwrap().id.as_str())
        .collect();
    for acked in &lost {
        assert!(
            !ids.contains(&acked.id.as_str()),
            "the harness sees acked {} lost",
            acked.offset
        );
    }
    assert_eq!(
        fresh.offset, 6,
        "and offset 6 taken again, by another event"
    );

    let next = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("the consumer answers in time")
        .expect("the consumer reports before it closes");
    let err = match next {
        Ok(message) => panic!("handed out offset {} of a diverged log", message.offset()),
        Err(err) => err,
    };
    let pc::ClientError::Status(status) = err else {
        panic!("not a status: {err}");
    };
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "LOG_DIVERGED");
}

/// Events of `topic` stored on the PostgreSQL at `url`.
async fn stored_on(url: &str, topic: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM events WHERE topic = $1")
        .bind(topic)
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// Split brain: the killed primary comes back as a primary beside the promoted standby.
/// A server started now, given both hosts with the old one first, takes the promoted
/// one (the higher timeline), so its publishes land there and not on the old primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resurrected_old_primary_is_not_chosen_over_the_promoted_standby() {
    let pair = ReplicatedPair::start().await;
    pair.create_database("brain").await;
    let first = TestServer::start_on(pair.both_hosts_url("brain"), |c| {
        c.database.db_timeout = Duration::from_secs(1);
    })
    .await;
    let mut client = first.client().await;
    publish(
        &mut client,
        "t",
        (1..=3).map(|n| numbered("t", n)).collect(),
    )
    .await;
    pair.kill_primary();
    pair.promote_standby().await;
    let (after, _) = publish_until_acked(&mut client, "t", numbered("t", 4)).await;
    assert_eq!(after.offset, 4);
    first.stop().await;

    pair.restart_old_primary().await;
    let second = TestServer::start_on(pair.both_hosts_url("brain"), |_| {}).await;
    let mut client = second.client().await;
    let results = publish(&mut client, "t", vec![numbered("t", 5)]).await;
    assert_eq!(results[0].offset, 5, "continues the promoted log");
    let old = format!("postgres://postgres@127.0.0.1:{}/brain", pair.primary_port);
    let promoted = format!("postgres://postgres@127.0.0.1:{}/brain", pair.standby_port);
    assert_eq!(
        stored_on(&old, "t").await,
        3,
        "nothing new on the old primary"
    );
    assert_eq!(stored_on(&promoted, "t").await, 5);
}
