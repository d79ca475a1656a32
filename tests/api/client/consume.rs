//! Consuming through the client: resuming across a server restart with nothing lost,
//! skipped or handed out twice; standby reported; a dropped message nacked; graceful
//! shutdown settling what is in hand.

use std::time::Duration;

use pc::proto::pulsebus::v1::{ConsumerConfig, DeliveryMode};
use pulsebus_client as pc;

use super::{client_of, json_events, next_message, quick_retry, restart, wait_state};
use crate::helpers::*;
use crate::work_queue::consumer_info;

fn client_with_quick_retry(server: &TestServer) -> pc::Client {
    pc::ClientBuilder::new(format!("http://{}", server.addr))
        .retry(quick_retry())
        .connect()
        .unwrap()
}

/// An exclusive consumer acking as it goes keeps going through a server restart:
/// offsets 1..=60 are handed out once each, in order.
#[tokio::test]
async fn a_consumer_resumes_after_a_server_restart_with_nothing_lost_or_repeated() {
    let server = quick_server().await;
    let client = client_with_quick_retry(&server);
    client.publish("t", json_events("e", 30)).await.unwrap();
    let mut options = pc::ConsumerOptions::new("t", "c");
    options.heartbeat_timeout = Duration::from_secs(2);
    let mut consumer = client.consumer(options).unwrap();
    let mut seen = Vec::new();
    for _ in 0..30 {
        let message = next_message(&mut consumer).await;
        seen.push(message.offset());
        message.ack().await.unwrap();
    }

    let server = restart(server).await;
    client.publish("t", json_events("e", 30)).await.unwrap();
    for _ in 0..30 {
        let message = next_message(&mut consumer).await;
        seen.push(message.offset());
        message.ack().await.unwrap();
    }

    assert_eq!(seen, (1..=60).collect::<Vec<i64>>());
    consumer.shutdown(WAIT).await;
    let info = consumer_info(&mut server.client().await, "t", "c").await;
    assert_eq!(info.committed_offset, 60);
}

/// A second subscriber of an exclusive consumer says it is waiting, and takes over
/// from the committed offset when the first one leaves.
#[tokio::test]
async fn a_standby_consumer_says_so_and_takes_over() {
    let server = quick_server().await;
    let client = client_of(&server);
    client.publish("t", json_events("e", 2)).await.unwrap();
    let mut first = client.consumer(pc::ConsumerOptions::new("t", "c")).unwrap();
    let message = next_message(&mut first).await;
    message.ack().await.unwrap();
    first.flush().await;

    let mut second = client.consumer(pc::ConsumerOptions::new("t", "c")).unwrap();
    assert_eq!(
        wait_state(&second, |s| *s == pc::State::Standby).await,
        pc::State::Standby
    );
    first.shutdown(WAIT).await;

    wait_state(&second, |s| matches!(s, pc::State::Attached { .. })).await;
    assert_eq!(next_message(&mut second).await.offset(), 2);
}

/// A message dropped without being settled is nacked, not acked: in a shared consumer
/// it comes again as attempt 2.
#[tokio::test]
async fn a_message_dropped_unsettled_comes_again() {
    let server = quick_server().await;
    let client = client_of(&server);
    client.publish("t", json_events("e", 1)).await.unwrap();
    let config = ConsumerConfig {
        mode: DeliveryMode::Shared as i32,
        min_backoff: Some(prost_types::Duration {
            seconds: 0,
            nanos: 10_000_000,
        }),
        ..Default::default()
    };
    let options = pc::ConsumerOptions::new("t", "workers").config(config);
    let mut consumer = client.consumer(options).unwrap();

    let first = next_message(&mut consumer).await;
    assert_eq!((first.offset(), first.attempt()), (1, 1));
    drop(first);

    let again = next_message(&mut consumer).await;
    assert_eq!((again.offset(), again.attempt()), (1, 2));
}

/// Shutdown waits for the messages in hand to be settled and sends every ack before
/// it returns: the committed offset covers all of them at once.
#[tokio::test]
async fn shutdown_settles_the_messages_in_hand_before_it_returns() {
    let server = quick_server().await;
    let client = client_of(&server);
    client.publish("t", json_events("e", 5)).await.unwrap();
    let mut options = pc::ConsumerOptions::new("t", "c");
    options.ack_linger = Duration::from_secs(3600); // only a flush sends them
    let mut consumer = client.consumer(options).unwrap();
    let mut in_hand = Vec::new();
    for _ in 0..5 {
        in_hand.push(next_message(&mut consumer).await);
    }
    let late = in_hand.split_off(3);
    for message in in_hand {
        message.ack().await.unwrap();
    }
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let finishing = tokio::spawn(async move {
        started.await.unwrap();
        for message in late {
            message.ack().await.unwrap();
        }
    });

    let shutdown = consumer.shutdown(WAIT);
    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => panic!("shutdown returned while two messages were in hand"),
        _ = tokio::task::yield_now() => {}
    }
    started_tx.send(()).unwrap();
    shutdown.await;
    finishing.await.unwrap();

    let info = consumer_info(&mut server.client().await, "t", "c").await;
    assert_eq!(info.committed_offset, 5);
}

/// With the default options (batches requested), 300 events stored before the consumer
/// starts are handed out one message per record, offsets 1..=300 in order, as with
/// batches turned off.
#[tokio::test]
async fn a_consumer_unpacks_batches_into_single_messages_in_order() {
    let server = quick_server().await;
    let client = client_of(&server);
    for _ in 0..3 {
        client.publish("t", json_events("e", 100)).await.unwrap();
    }
    for (name, batch_records) in [
        ("batched", pc::consume::DEFAULT_BATCH_RECORDS),
        ("plain", 0),
    ] {
        let mut options = pc::ConsumerOptions::new("t", name);
        assert_eq!(options.batch_records, pc::consume::DEFAULT_BATCH_RECORDS);
        options.batch_records = batch_records;
        let mut consumer = client.consumer(options).unwrap();
        let mut seen = Vec::new();
        for _ in 0..300 {
            let message = next_message(&mut consumer).await;
            seen.push(message.offset());
            message.ack().await.unwrap();
        }
        assert_eq!(seen, (1..=300).collect::<Vec<i64>>(), "{name}");
        consumer.shutdown(WAIT).await;
        let info = consumer_info(&mut server.client().await, "t", name).await;
        assert_eq!(info.committed_offset, 300, "{name}");
    }
}
