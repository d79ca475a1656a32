use std::sync::Arc;

use chrono::Utc;
use futures_util::FutureExt as _;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::*;
use crate::log::{Event, Payload, Record};
use crate::proto::pulsebus::v1 as pb;
use crate::subscribe::Delivery;
use crate::subscribe::tail::SharedRecord;
use pb::subscribe_response::Message;

fn record(offset: i64) -> Item {
    let record = Record {
        topic: "lessons".into(),
        offset,
        appended_at: Utc::now(),
        event: Event {
            id: Uuid::now_v7(),
            event_type: "lesson.published".into(),
            source: "catalog".into(),
            subject: String::new(),
            time: None,
            correlation_id: String::new(),
            causation_id: String::new(),
            schema_version: 1,
            attributes: serde_json::Map::new(),
            content_type: "application/json".into(),
            payload: Payload::Json("{}".into()),
        },
    };
    Ok(Delivery::Record {
        record: SharedRecord::new(record),
        attempt: 1,
    })
}

fn caught_up(head: i64) -> Item {
    Ok(Delivery::CaughtUp { head })
}

/// What a message holds: the offsets of its records, or a negative marker for a
/// caught_up (its head, negated).
fn shape(sent: Result<Encoded, Status>) -> Vec<i64> {
    let decoded = pb::SubscribeResponse::decode(sent.unwrap().to_bytes()).unwrap();
    match decoded.message.unwrap() {
        Message::Batch(b) => b.records.iter().map(|r| r.offset).collect(),
        Message::CaughtUp(c) => vec![-c.head_offset],
        other => panic!("unexpected {other:?}"),
    }
}

/// A channel already holding `items`, closed behind them when `close`.
fn channel(items: Vec<Item>, close: bool) -> (ReceiverStream<Item>, Option<mpsc::Sender<Item>>) {
    let (tx, rx) = mpsc::channel(items.len().max(1));
    items.into_iter().for_each(|i| tx.try_send(i).unwrap());
    (ReceiverStream::new(rx), (!close).then_some(tx))
}

#[tokio::test]
async fn ready_records_go_out_in_batches_of_at_most_max_in_order() {
    let (rx, _) = channel((1..=7).map(record).collect(), true);
    let sent: Vec<_> = Batches::new(rx, 3).map(shape).collect().await;
    assert_eq!(sent, [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
}

#[tokio::test]
async fn anything_else_ends_the_batch_and_follows_it() {
    let items = vec![record(1), record(2), caught_up(2), caught_up(2), record(3)];
    let (rx, _) = channel(items, true);
    let sent: Vec<_> = Batches::new(rx, 10).map(shape).collect().await;
    assert_eq!(sent, [vec![1, 2], vec![-2], vec![-2], vec![3]]);
}

#[tokio::test]
async fn a_batch_goes_out_without_waiting_for_more_records() {
    let (rx, tx) = channel(vec![record(1)], false);
    let mut batches = Batches::new(rx, 100);
    let first = batches.next().now_or_never().expect("sent at once");
    assert_eq!(shape(first.unwrap()), [1]);
    assert!(batches.next().now_or_never().is_none(), "nothing is ready");
    tx.unwrap().try_send(record(2)).unwrap();
    assert_eq!(shape(batches.next().await.unwrap()), [2]);
}

#[tokio::test]
async fn errors_end_the_batch_and_then_the_stream_ends() {
    let error = Err(crate::subscribe::SubscribeError::Ephemeral);
    let (rx, _) = channel(vec![record(1), error], true);
    let mut batches = Batches::new(rx, 10);
    assert_eq!(shape(batches.next().await.unwrap()), [1]);
    assert!(batches.next().await.unwrap().is_err());
    assert!(batches.next().await.is_none());
    assert!(batches.next().await.is_none(), "stays ended");
}

#[test]
fn encoded_keeps_shared_record_bytes() {
    let Ok(Delivery::Record { record, .. }) = record(5) else {
        unreachable!()
    };
    let delivery = Delivery::Record {
        record: Arc::clone(&record),
        attempt: 1,
    };
    let a = encoded(Ok(delivery.clone())).unwrap().to_bytes();
    let b = Encoded::record(delivery).unwrap();
    assert_eq!(a.as_ptr(), b.as_ptr());
}
