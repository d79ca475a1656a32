//! A property over three replicas on one database: whatever mix of topics, batch sizes
//! and servers the publishers pick, every topic's offsets are exactly 1..=count, each
//! publisher's events keep the order it sent them in, every acknowledged offset is the
//! stored one, and every replica reads and streams the same log.

use std::collections::HashMap;
use std::time::Instant;

use crate::helpers::probes::sql;
use crate::helpers::*;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use uuid::Uuid;

const SERVERS: usize = 3;
const TOPICS: [&str; 4] = ["lessons", "quizzes", "badges", "grades"];
const PUBLISHERS: usize = 8;
const REQUESTS_PER_PUBLISHER: usize = 30;
const MAX_BATCH: usize = 20;
/// About one request in this many is sent twice.
const RESEND_ONE_IN: usize = 8;
/// Independent cases, each with its own seed, servers and database.
const CASES: usize = 3;

/// A publisher's event number `seq` (counted over all its events, in sending order).
fn subject(publisher: usize, seq: usize) -> String {
    format!("publisher-{publisher}/{seq}")
}

fn parse_subject(subject: &str) -> (usize, usize) {
    let (p, seq) = subject
        .strip_prefix("publisher-")
        .and_then(|s| s.split_once('/'))
        .expect("a publisher's subject");
    (p.parse().unwrap(), seq.parse().unwrap())
}

/// What one publisher was told.
#[derive(Default)]
struct Acked {
    /// Every acknowledged event: its topic and result, by id.
    results: HashMap<Uuid, (String, PublishResult)>,
    /// Requests sent again (same topic, same ids, maybe another server).
    resent: usize,
}

/// Publishes `REQUESTS_PER_PUBLISHER` requests one after another, each to a random
/// topic with a random batch size through a random server; now and then sends the
/// previous request again, which must come back as duplicates with the same offsets.
async fn publisher(p: usize, mut clients: Vec<Client<Channel>>, mut rng: Rng) -> Acked {
    let mut acked = Acked::default();
    let mut seq = 0;
    let mut previous: Option<(&str, Vec<Event>)> = None;
    for _ in 0..REQUESTS_PER_PUBLISHER {
        if let Some((topic, batch)) = previous.as_ref().filter(|_| rng.below(RESEND_ONE_IN) == 0) {
            let client = &mut clients[rng.below(SERVERS)];
            for result in publish(client, topic, batch.clone()).await {
                let (_, first) = &acked.results[&result.id.parse().unwrap()];
                assert!(result.duplicate, "a resent event was stored again");
                assert_eq!(result.offset, first.offset, "a resent event's offset");
            }
            acked.resent += 1;
        }
        let topic = TOPICS[rng.below(TOPICS.len())];
        let size = rng.between(1, MAX_BATCH);
        let client = &mut clients[rng.below(SERVERS)];
        let batch: Vec<Event> = (0..size)
            .map(|i| Event {
                id: Uuid::new_v4().to_string(),
                subject: subject(p, seq + i),
                ..event("tick", "{}")
            })
            .collect();
        seq += size;
        let results = publish(client, topic, batch.clone()).await;
        assert_eq!(results.len(), size);
        for result in results {
            assert!(!result.duplicate, "fresh ids are never duplicates");
            let id = result.id.parse().unwrap();
            acked.results.insert(id, (topic.to_owned(), result));
        }
        previous = Some((topic, batch));
    }
    acked
}

/// A subscriber tailing `topic` on server `s` while the publishers run: collects
/// (offset, id) of every record until it has the topic's final count, then checks that
/// nothing more comes (a heartbeat first).
async fn tail(
    s: usize,
    topic: &'static str,
    mut stream: tonic::Streaming<SubscribeResponse>,
    mut counts: watch::Receiver<Option<HashMap<&'static str, usize>>>,
) -> (usize, &'static str, Vec<(i64, String)>) {
    let mut streamed = Vec::new();
    loop {
        let target = counts.borrow_and_update().as_ref().map(|c| c[topic]);
        if target.is_some_and(|n| streamed.len() >= n) {
            expect_heartbeat(&mut stream).await;
            return (s, topic, streamed);
        }
        tokio::select! {
            message = stream.message() => {
                let message = message.expect("the stream is healthy").expect("the stream is open");
                if let Some(subscribe_response::Message::Record(r)) = message.message {
                    streamed.push((r.offset, r.event.unwrap().id));
                }
            }
            _ = counts.changed() => {}
        }
    }
}

/// One stored row, as the assertions need it.
#[derive(sqlx::FromRow)]
struct Row {
    offset: i64,
    id: Uuid,
    subject: String,
}

/// 3 cases, each on a fresh database: 8 publishers send 30 requests each (random
/// topic of 4, random batch of 1..20, random server of 3, some sent twice; seeded)
/// while an ephemeral subscriber per topic tails each server. Per topic the stored
/// offsets are exactly 1..=count, each publisher's events are in the order it sent
/// them, every acknowledged offset is the stored one (resent ones included) and
/// nothing unacknowledged is stored, the head is the count, and every server's Read
/// and every subscriber saw exactly the stored log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_database_keep_every_topic_gapless_and_each_publishers_order() {
    let mut seeds = Rng::from_env_or_random("multi-server");
    for case in 0..CASES {
        let seed = seeds.next_u64();
        eprintln!("case {case}: seed {seed}");
        run_case(Rng::new(seed)).await;
    }
}

async fn run_case(mut rng: Rng) {
    let first = quick_server().await;
    let mut servers = vec![first];
    for _ in 1..SERVERS {
        servers.push(TestServer::start_on(servers[0].database_url.clone(), quick).await);
    }
    let (counts_tx, counts_rx) = watch::channel(None);
    let mut tails = JoinSet::new();
    for (s, server) in servers.iter().enumerate() {
        for topic in TOPICS {
            let stream = subscribe(&mut server.client().await, sub_req(topic, "")).await;
            tails.spawn(tail(s, topic, stream, counts_rx.clone()));
        }
    }

    let started = Instant::now();
    let mut publishers = JoinSet::new();
    for p in 0..PUBLISHERS {
        let mut clients = Vec::new();
        for server in &servers {
            clients.push(server.client().await);
        }
        publishers.spawn(publisher(p, clients, Rng::new(rng.next_u64())));
    }
    let logs = tokio::time::timeout(WAIT, publishers.join_all())
        .await
        .expect("publishers finish in time");
    let took = started.elapsed();
    let resent: usize = logs.iter().map(|l| l.resent).sum();
    let acked: HashMap<Uuid, (String, PublishResult)> =
        logs.into_iter().flat_map(|l| l.results).collect();

    let db = sql(&servers[0].database_url).await;
    let mut counts = Vec::new();
    let mut stored_by_topic = HashMap::new();
    for topic in TOPICS {
        let rows: Vec<Row> = sqlx::query_as(
            r#"SELECT "offset", id, subject FROM events WHERE topic = $1 ORDER BY "offset""#,
        )
        .bind(topic)
        .fetch_all(&db)
        .await
        .unwrap();
        let head: Option<i64> = sqlx::query_scalar("SELECT head FROM topics WHERE name = $1")
            .bind(topic)
            .fetch_optional(&db)
            .await
            .unwrap();
        let count = rows.len() as i64;
        counts.push((topic, count));

        let offsets: Vec<i64> = rows.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (1..=count).collect::<Vec<_>>(), "{topic}: gapless");
        assert_eq!(head.unwrap_or(0), count, "{topic}: head");
        let mut last_seq: HashMap<usize, usize> = HashMap::new();
        for row in &rows {
            let (p, seq) = parse_subject(&row.subject);
            if let Some(&before) = last_seq.get(&p) {
                assert!(
                    seq > before,
                    "{topic}: publisher {p}'s event {seq} is stored after its event {before}"
                );
            }
            last_seq.insert(p, seq);
            let (acked_topic, result) = acked
                .get(&row.id)
                .unwrap_or_else(|| panic!("{topic}: {} was stored but never acked", row.id));
            assert_eq!(
                (acked_topic.as_str(), result.offset),
                (topic, row.offset),
                "{}: acknowledged where it is stored",
                row.id
            );
        }
        stored_by_topic.insert(topic, rows);
    }
    let stored: i64 = counts.iter().map(|(_, c)| c).sum();
    eprintln!(
        "{} events acked in {took:?} through {SERVERS} servers ({resent} requests resent, all duplicates); stored per topic {counts:?}",
        acked.len()
    );
    assert_eq!(
        stored as usize,
        acked.len(),
        "every acked event is stored once"
    );

    for (s, server) in servers.iter().enumerate() {
        let mut client = server.client().await;
        for topic in TOPICS {
            let read: Vec<(i64, String)> = read_all(&mut client, topic)
                .await
                .into_iter()
                .map(|r| (r.offset, r.event.unwrap().id))
                .collect();
            let stored: Vec<(i64, String)> = stored_by_topic[topic]
                .iter()
                .map(|r| (r.offset, r.id.to_string()))
                .collect();
            assert_eq!(read, stored, "server {s} reads {topic} as stored");
        }
    }
    let counts: HashMap<&str, usize> = stored_by_topic.iter().map(|(t, r)| (*t, r.len())).collect();
    counts_tx.send(Some(counts)).unwrap();
    let tails = tokio::time::timeout(WAIT, tails.join_all())
        .await
        .expect("every subscriber got the whole topic in time");
    for (s, topic, streamed) in tails {
        let stored: Vec<(i64, String)> = stored_by_topic[topic]
            .iter()
            .map(|r| (r.offset, r.id.to_string()))
            .collect();
        assert_eq!(
            streamed, stored,
            "the subscriber on server {s} streams {topic} as stored"
        );
    }
    eprintln!("every server's Read and tailing subscriber matched the stored log");
    for server in servers {
        server.stop().await;
    }
}
