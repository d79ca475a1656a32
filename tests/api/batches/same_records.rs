//! A batched stream is the unbatched stream, regrouped.

use super::{Received, batched};
use crate::helpers::*;

const PUBLISHES: usize = 6;
const PER_PUBLISH: usize = 50;
const TOTAL: usize = PUBLISHES * PER_PUBLISH;

/// Publishes `TOTAL` events to `topic` in `PUBLISHES` calls, types alternating `a`/`b`.
async fn publish_all(client: &mut Client<tonic::transport::Channel>, topic: &str) {
    for call in 0..PUBLISHES {
        let batch = (0..PER_PUBLISH)
            .map(|i| {
                let n = call * PER_PUBLISH + i;
                event(
                    if n.is_multiple_of(2) { "a" } else { "b" },
                    &format!("{{\"n\":{n}}}"),
                )
            })
            .collect();
        publish(client, topic, batch).await;
    }
}

/// 300 events published in six calls, then two subscriptions from the start: one
/// unbatched, one with batches of up to 64. The batched one holds exactly the same
/// records (offsets, ids, contents) in the same order; no message holds more than
/// 64 records, and since every record was already there when it subscribed, at least
/// one message holds more than one. Records published afterwards (live) reach both.
#[tokio::test]
async fn a_batched_stream_holds_exactly_the_records_and_order_of_an_unbatched_one() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish_all(&mut client, "lessons").await;

    let mut plain_stream = subscribe(&mut client, batched("lessons", "", 0)).await;
    let mut batched_stream = subscribe(&mut client, batched("lessons", "", 64)).await;
    let (mut plain, mut batches) = (Received::default(), Received::default());
    plain.next(&mut plain_stream, TOTAL).await;
    batches.next(&mut batched_stream, TOTAL).await;

    assert!(
        plain.per_message.iter().all(|&n| n == 1),
        "unbatched: one record each"
    );
    assert_eq!(plain.offsets_and_ids(), batches.offsets_and_ids());
    assert_eq!(
        plain.records, batches.records,
        "the same records, field for field"
    );
    let offsets: Vec<i64> = plain.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (1..=TOTAL as i64).collect::<Vec<_>>());
    let largest = batches.per_message.iter().max().copied().unwrap_or(0);
    assert!(largest <= 64, "a batch held {largest} records");
    assert!(
        largest > 1,
        "records already stored went out one per message: {:?}",
        batches.per_message
    );

    publish(&mut client, "lessons", events("a", 3)).await;
    plain.next(&mut plain_stream, 3).await;
    batches.next(&mut batched_stream, 3).await;
    assert_eq!(plain.offsets_and_ids(), batches.offsets_and_ids());
}

/// The type filter applies per record: a batched stream of type `a` holds exactly
/// the `a` records of an unbatched one, in order, and none of type `b`.
#[tokio::test]
async fn the_type_filter_applies_to_each_record_of_a_batch() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish_all(&mut client, "quizzes").await;
    let only_a = |max| SubscribeRequest {
        types: vec!["a".into()],
        ..batched("quizzes", "", max)
    };
    let mut plain_stream = subscribe(&mut client, only_a(0)).await;
    let mut batched_stream = subscribe(&mut client, only_a(32)).await;
    let (mut plain, mut batches) = (Received::default(), Received::default());
    plain.next(&mut plain_stream, TOTAL / 2).await;
    batches.next(&mut batched_stream, TOTAL / 2).await;
    assert_eq!(plain.records, batches.records);
    let types = batches
        .records
        .iter()
        .map(|r| r.event.as_ref().unwrap().r#type.as_str());
    assert!(types.into_iter().all(|t| t == "a"));
    assert!(batches.per_message.iter().all(|&n| n <= 32));
}

/// A durable exclusive consumer with batches: `attached` comes first, alone, then the
/// records in order; a cumulative ack of the last one commits them all.
#[tokio::test]
async fn an_exclusive_consumer_gets_attached_then_its_records_in_batches() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "grades", events("g", 100)).await;
    let mut stream = subscribe(&mut client, batched("grades", "report", 16)).await;
    match next_message(&mut stream).await {
        subscribe_response::Message::Attached(a) => assert_eq!(a.committed_offset, 0),
        other => panic!("expected attached first, got {other:?}"),
    }
    let mut received = Received::default();
    received.next(&mut stream, 100).await;
    let offsets: Vec<i64> = received.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (1..=100).collect::<Vec<_>>());
    assert!(received.per_message.iter().all(|&n| n <= 16));
    assert_eq!(ack(&mut client, "grades", "report", 100).await, 100);
}
