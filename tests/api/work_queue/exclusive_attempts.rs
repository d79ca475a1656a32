//! Delivery attempts of exclusive consumers: records that come back (a nack's rewind, a
//! subscriber that left holding them) carry their attempt, and past `max_deliveries`
//! they go to the dead-letter topic, as in the shared modes.

use std::time::Duration;

use super::{config, consumer_info, nack};
use crate::helpers::*;

/// An exclusive consumer that may deliver each record twice.
fn twice() -> SubscribeRequest {
    let mut config = config(
        DeliveryMode::Exclusive,
        Duration::from_secs(30),
        Duration::from_millis(10),
    );
    config.max_deliveries = 2;
    SubscribeRequest {
        config: Some(config),
        ..sub_req("t", "c")
    }
}

async fn attempts(stream: &mut tonic::Streaming<SubscribeResponse>, n: usize) -> Vec<(i64, u32)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let record = next_record(stream).await;
        seen.push((record.offset, record.delivery_attempt));
    }
    seen
}

/// A nack's rewind delivers the nacked record and the unsettled ones after it as
/// attempt 2; a nack of the last allowed attempt parks the record at once, with its
/// attempts, and the committed offset moves over it.
#[tokio::test]
async fn a_rewound_record_is_a_new_attempt_and_its_last_nack_parks_it() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 3)).await;
    let mut stream = subscribe(&mut client, twice()).await;
    assert_eq!(attempts(&mut stream, 3).await, [(1, 1), (2, 1), (3, 1)]);
    super::ack_each(&mut client, "t", "c", &[1]).await;

    nack(&mut client, "t", "c", &[2], Some(Duration::ZERO)).await;
    assert_eq!(attempts(&mut stream, 2).await, [(2, 2), (3, 2)]);
    nack(&mut client, "t", "c", &[2], None).await;
    super::ack_each(&mut client, "t", "c", &[3]).await;

    let parked = read_all(&mut client, "t.dlq").await;
    assert_eq!(parked.len(), 1, "parked once");
    let attributes = &parked[0].event.as_ref().unwrap().attributes;
    assert_eq!(attributes["pulsebus.dead_letter.offset"], "2");
    assert_eq!(attributes["pulsebus.dead_letter.attempts"], "2");
    let info = consumer_info(&mut client, "t", "c").await;
    assert_eq!((info.committed_offset, info.dead_lettered), (3, 1));
}

/// A subscriber that leaves holding records makes their next delivery attempt 2 (the
/// next subscriber sees it); when that one leaves too, the records are out of attempts
/// and go to the dead-letter topic instead of a third delivery.
#[tokio::test]
async fn records_left_unsettled_come_back_as_new_attempts_until_they_are_parked() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 2)).await;

    let mut first = subscribe(&mut client, twice()).await;
    assert_eq!(attempts(&mut first, 2).await, [(1, 1), (2, 1)]);
    drop(first);
    let mut second = subscribe(&mut server.client().await, twice()).await;
    assert_eq!(attempts(&mut second, 2).await, [(1, 2), (2, 2)]);
    drop(second);
    let mut third = subscribe(&mut server.client().await, twice()).await;

    let (info, _) = settle(
        Duration::from_millis(20),
        || {
            let mut client = client.clone();
            async move { consumer_info(&mut client, "t", "c").await }
        },
        |info| info.committed_offset == 2,
    )
    .await;
    assert_eq!((info.committed_offset, info.dead_lettered), (2, 2));
    let parked = read_all(&mut client, "t.dlq").await;
    let offsets: Vec<&str> = parked
        .iter()
        .map(|r| r.event.as_ref().unwrap().attributes["pulsebus.dead_letter.offset"].as_str())
        .collect();
    assert_eq!(offsets, ["1", "2"]);
    publish(&mut client, "t", events("e", 1)).await;
    assert_eq!(
        attempts(&mut third, 1).await,
        [(3, 1)],
        "nothing parked comes again"
    );
}
