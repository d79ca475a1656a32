//! Work queues with batches: flow control and acks stay per record.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Received, heartbeat_next};
use crate::helpers::*;
use crate::work_queue::{ack_each, config, shared_sub};

/// A shared consumer with max_in_flight 8 and batches of up to 64: it gets exactly 8
/// records, then heartbeats saying it is at max_in_flight; three individual acks let
/// exactly three more through; acking each record as it comes, all 40 arrive, each
/// once.
#[tokio::test]
async fn a_shared_consumer_in_batches_still_gets_max_in_flight_and_acks_per_record() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "jobs", events("job", 40)).await;
    let cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    let req = SubscribeRequest {
        max_in_flight: 8,
        batch_records: 64,
        ..shared_sub("jobs", "workers", &cfg)
    };
    let mut stream = subscribe(&mut client, req).await;
    let mut received = Received::default();
    received.next(&mut stream, 8).await;
    let beat = heartbeat_next(&mut stream).await;
    assert_eq!((beat.in_flight, beat.at_max_in_flight), (8, true));

    for r in &received.records[..3] {
        ack_each(&mut client, "jobs", "workers", &[r.offset]).await;
    }
    received.next(&mut stream, 3).await;
    let beat = heartbeat_next(&mut stream).await;
    assert_eq!((beat.in_flight, beat.at_max_in_flight), (8, true));

    let mut acked = 3;
    while received.records.len() < 40 {
        let unacked: Vec<i64> = received.records[acked..].iter().map(|r| r.offset).collect();
        for offset in &unacked {
            ack_each(&mut client, "jobs", "workers", &[*offset]).await;
        }
        acked += unacked.len();
        received.next_message(&mut stream).await;
        assert!(received.records.len() - acked <= 8, "past max_in_flight");
    }
    let offsets: BTreeSet<i64> = received.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (1..=40).collect(), "each record once");
    assert!(
        received.per_message.iter().all(|&n| n <= 8),
        "never past max_in_flight"
    );
}

const SUBJECTS: usize = 4;
const PER_SUBJECT: usize = 10;

/// A key-shared consumer with batches: no message holds two unsettled records of one
/// subject, each subject's records come in offset order, and acking each record
/// alone settles them all.
#[tokio::test]
async fn a_key_shared_consumer_in_batches_keeps_one_unsettled_record_per_subject() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let events: Vec<Event> = (0..SUBJECTS * PER_SUBJECT)
        .map(|i| Event {
            subject: format!("student/{}", i % SUBJECTS),
            ..event("quiz.graded", "{}")
        })
        .collect();
    publish(&mut client, "quizzes", events).await;
    let cfg = config(
        DeliveryMode::KeyShared,
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    let req = SubscribeRequest {
        batch_records: 64,
        ..shared_sub("quizzes", "grader", &cfg)
    };
    let mut stream = subscribe(&mut client, req).await;
    let mut by_subject: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut total = 0;
    while total < SUBJECTS * PER_SUBJECT {
        let records = Received::records_of(next_message(&mut stream).await);
        let subjects: BTreeSet<&str> = records
            .iter()
            .map(|r| r.event.as_ref().unwrap().subject.as_str())
            .collect();
        assert_eq!(
            subjects.len(),
            records.len(),
            "two unsettled records of one subject"
        );
        for r in &records {
            let subject = r.event.as_ref().unwrap().subject.clone();
            by_subject.entry(subject).or_default().push(r.offset);
            ack_each(&mut client, "quizzes", "grader", &[r.offset]).await;
        }
        total += records.len();
    }
    assert_eq!(by_subject.len(), SUBJECTS);
    for (subject, offsets) in by_subject {
        assert_eq!(offsets.len(), PER_SUBJECT, "{subject}");
        assert!(offsets.is_sorted(), "{subject} out of order: {offsets:?}");
    }
}
