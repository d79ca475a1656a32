//! `Consumer::run`: outcomes become acks, nacks and dead letters; lanes keep each
//! subject's records in order; shutdown ends the run after settling.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pc::event::PayloadExt;
use pc::proto::pulsebus::v1::{ConsumerConfig, DeliveryMode};
use pulsebus_client as pc;

use super::client_of;
use crate::helpers::*;
use crate::work_queue::consumer_info;

fn shared(mode: DeliveryMode) -> ConsumerConfig {
    ConsumerConfig {
        mode: mode as i32,
        max_deliveries: 3,
        min_backoff: Some(prost_types::Duration {
            seconds: 0,
            nanos: 10_000_000,
        }),
        max_backoff: Some(prost_types::Duration {
            seconds: 0,
            nanos: 50_000_000,
        }),
        ..Default::default()
    }
}

/// What handlers saw: (payload n, offset, attempt), in handling order.
type Seen = Arc<Mutex<Vec<(u64, i64, u32)>>>;

/// `Retry` redelivers (attempt 2), `Fail` parks the record in the dead-letter topic
/// with its reason, a panicking handler counts as a retry, and the rest is acked: the
/// committed offset ends past every record.
#[tokio::test]
async fn outcomes_become_acks_retries_and_dead_letters() {
    let server = quick_server().await;
    let client = client_of(&server);
    client
        .publish("mails", super::json_events("mail.requested", 10))
        .await
        .unwrap();
    let options = pc::ConsumerOptions::new("mails", "sender").config(shared(DeliveryMode::Shared));
    let consumer = client.consumer(options).unwrap();
    let seen: Seen = Arc::default();
    let run = pc::RunOptions {
        concurrency: 3,
        ..Default::default()
    };
    let shutdown = run.shutdown.clone();
    let (done_tx, done) = tokio::sync::watch::channel(0usize);
    let handler = {
        let seen = seen.clone();
        move |record: pc::proto::pulsebus::v1::Record| {
            let seen = seen.clone();
            let done_tx = done_tx.clone();
            async move {
                let n = record.decode_json::<serde_json::Value>().unwrap()["n"]
                    .as_u64()
                    .unwrap();
                seen.lock()
                    .unwrap()
                    .push((n, record.offset, record.delivery_attempt));
                let outcome = match (n, record.delivery_attempt) {
                    (3, _) => pc::Outcome::Fail("poison".into()),
                    (5, 1) => pc::Outcome::Retry(None),
                    (6, 1) => panic!("a handler bug"),
                    _ => pc::Outcome::Ack,
                };
                done_tx.send_modify(|n| *n += 1);
                outcome
            }
        }
    };
    let running = tokio::spawn(consumer.run(handler, run));
    // 10 records, 5 and 6 twice (6's first run panics before it counts).
    tokio::time::timeout(WAIT, done.clone().wait_for(|n| *n >= 11))
        .await
        .unwrap()
        .unwrap();
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&(5, 6, 2)), "5 came again: {seen:?}");
    assert!(
        seen.contains(&(6, 7, 2)),
        "6 came again after the panic: {seen:?}"
    );
    let parked = read_all(&mut server.client().await, "mails.dlq").await;
    assert_eq!(parked.len(), 1);
    let attributes = &parked[0].event.as_ref().unwrap().attributes;
    assert_eq!(attributes["pulsebus.dead_letter.offset"], "4");
    assert_eq!(attributes["pulsebus.dead_letter.reason"], "poison");
    let info = consumer_info(&mut server.client().await, "mails", "sender").await;
    assert_eq!(info.committed_offset, 10);
}

/// A key-shared consumer with four lanes handles every record once, and each
/// subject's records in offset order.
#[tokio::test]
async fn concurrent_lanes_keep_each_subjects_records_in_order() {
    let server = quick_server().await;
    let client = client_of(&server);
    let mut events = super::json_events("quiz.submitted", 100);
    for (i, event) in events.iter_mut().enumerate() {
        event.subject = format!("student/{}", i % 5);
    }
    client.publish("quizzes", events).await.unwrap();
    let options =
        pc::ConsumerOptions::new("quizzes", "achievements").config(shared(DeliveryMode::KeyShared));
    let consumer = client.consumer(options).unwrap();
    let handled: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let run = pc::RunOptions {
        concurrency: 4,
        ..Default::default()
    };
    let shutdown = run.shutdown.clone();
    let (count_tx, count) = tokio::sync::watch::channel(0usize);
    let handler = {
        let handled = handled.clone();
        move |record: pc::proto::pulsebus::v1::Record| {
            let handled = handled.clone();
            let count_tx = count_tx.clone();
            async move {
                tokio::task::yield_now().await;
                let subject = record.event.unwrap().subject;
                handled.lock().unwrap().push((subject, record.offset));
                count_tx.send_modify(|n| *n += 1);
                pc::Outcome::Ack
            }
        }
    };
    let running = tokio::spawn(consumer.run(handler, run));
    tokio::time::timeout(WAIT, count.clone().wait_for(|n| *n >= 100))
        .await
        .unwrap()
        .unwrap();
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 100, "each once");
    let mut by_subject: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (subject, offset) in handled {
        by_subject.entry(subject).or_default().push(offset);
    }
    for (subject, offsets) in by_subject {
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "{subject}: {offsets:?}"
        );
        assert_eq!(offsets.len(), 20);
    }
}
