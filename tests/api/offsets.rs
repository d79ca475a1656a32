//! Offsets stay gapless and commit-ordered under concurrent publishers, also when they
//! publish through several servers on one database.

use std::collections::HashMap;

use crate::helpers::*;
use tokio::task::JoinSet;

const PUBLISHERS: usize = 8;
const PER_PUBLISHER: usize = 500;

fn tagged(publisher: usize, seq: usize) -> Event {
    Event {
        subject: format!("publisher-{publisher}"),
        ..event("load.tick", &format!(r#"{{"seq": {seq}}}"#))
    }
}

/// Publishes `PER_PUBLISHER` single-event requests from each of `PUBLISHERS` tasks,
/// spreading the publishers over the given servers.
async fn publish_concurrently(servers: &[&TestServer], topic: &str) {
    let mut tasks = JoinSet::new();
    for p in 0..PUBLISHERS {
        let mut client = servers[p % servers.len()].client().await;
        let topic = topic.to_owned();
        tasks.spawn(async move {
            for seq in 0..PER_PUBLISHER {
                publish(&mut client, &topic, vec![tagged(p, seq)]).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("publisher task succeeds");
    }
}

/// Offsets are exactly 1..=N with no gap or duplicate, and each publisher's events
/// appear in the order it published them.
fn assert_gapless_and_ordered(records: &[Record]) {
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    let expected: Vec<i64> = (1..=(PUBLISHERS * PER_PUBLISHER) as i64).collect();
    assert_eq!(offsets, expected);
    let mut next_seq: HashMap<String, usize> = HashMap::new();
    for r in records {
        let e = r.event.as_ref().unwrap();
        let Some(event::Data::TextData(json)) = &e.data else {
            panic!("payload missing")
        };
        let seq = serde_json::from_str::<serde_json::Value>(json).unwrap()["seq"]
            .as_u64()
            .unwrap() as usize;
        let expected = next_seq.entry(e.subject.clone()).or_default();
        assert_eq!(
            seq, *expected,
            "{} out of order at offset {}",
            e.subject, r.offset
        );
        *expected += 1;
    }
}

/// 8 concurrent publishers x 500 events on one topic: offsets 1..4000, per-publisher order kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_get_gapless_offsets_in_their_own_order() {
    let server = TestServer::start().await;

    publish_concurrently(&[&server], "busy").await;

    let records = read_all(&mut server.client().await, "busy").await;
    assert_gapless_and_ordered(&records);
}

/// Two server processes' worth of replicas on one database share the topic's offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_database_share_one_gapless_sequence() {
    let a = TestServer::start().await;
    let b = TestServer::start_on(a.database_url.clone(), |_| {}).await;

    publish_concurrently(&[&a, &b], "shared").await;

    let from_b = read_all(&mut b.client().await, "shared").await;
    assert_gapless_and_ordered(&from_b);
    let from_a = read_all(&mut a.client().await, "shared").await;
    assert_eq!(from_a, from_b);
}

/// Topics number their events independently.
#[tokio::test]
async fn each_topic_has_its_own_offsets() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let a = publish(&mut client, "topic-a", vec![event("x", "{}"); 2]).await;
    let b = publish(&mut client, "topic-b", vec![event("x", "{}")]).await;

    assert_eq!(a.iter().map(|r| r.offset).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(b[0].offset, 1);
}
