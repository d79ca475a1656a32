//! Durable consumers and retention: they hold it until they commit, but only up to
//! the consumer hold; past it a consumer continues from the first retained offset.

use std::time::Duration;

use super::*;
use crate::work_queue::{ack_each, config, shared_sub};

/// Creates (or moves) `consumer` so that its next record is `offset`.
async fn seek(
    client: &mut Client<tonic::transport::Channel>,
    topic: &str,
    consumer: &str,
    offset: i64,
) {
    let req = SeekRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        start: Some(StartPosition {
            position: Some(start_position::Position::Offset(offset)),
        }),
    };
    client.seek(req).await.expect("seek succeeds");
}

async fn committed(sql: &PgPool, topic: &str, consumer: &str) -> i64 {
    sqlx::query_scalar("SELECT committed FROM consumers WHERE topic = $1 AND name = $2")
        .bind(topic)
        .bind(consumer)
        .fetch_one(sql)
        .await
        .unwrap()
}

/// Marks events `from..=to` as appended `age` ago.
async fn backdate(sql: &PgPool, topic: &str, from: i64, to: i64, age: &str) {
    sqlx::query(
        "UPDATE events SET appended_at = appended_at - $4::interval \
         WHERE topic = $1 AND \"offset\" BETWEEN $2 AND $3",
    )
    .bind(topic)
    .bind(from)
    .bind(to)
    .bind(age)
    .execute(sql)
    .await
    .unwrap();
}

/// Events a consumer has not committed stay, whatever the count limit says, and go
/// as its commits pass them.
#[tokio::test]
async fn a_durable_consumer_holds_retention_until_it_commits() {
    let server = sweeping_server().await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "held", events(20)).await;
    seek(&mut client, "held", "slow", 6).await;

    set_retention(&sql, "held", None, Some(5)).await;
    wait_first_offset(&sql, "held", 6).await;

    ack(&mut client, "held", "slow", 12).await;
    wait_first_offset(&sql, "held", 13).await;
    ack(&mut client, "held", "slow", 20).await;
    wait_first_offset(&sql, "held", 16).await;
    assert_eq!(
        committed(&sql, "held", "slow").await,
        20,
        "the consumer is not moved"
    );
}

/// Past the consumer hold (7 days by default) events go although a consumer never
/// committed them; that consumer continues from the first retained offset, and one
/// that was ahead is not touched.
#[tokio::test]
async fn past_the_consumer_hold_events_go_and_the_consumer_continues_from_the_first_retained_offset()
 {
    let server = sweeping_server().await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "dead", events(20)).await;
    seek(&mut client, "dead", "gone", 1).await;
    seek(&mut client, "dead", "ahead", 13).await;
    backdate(&sql, "dead", 1, 10, "8 days").await;

    set_retention(&sql, "dead", None, Some(5)).await;
    // Offsets 1-10 are past the hold; 11-15 are over the count but held for "gone".
    wait_first_offset(&sql, "dead", 11).await;
    assert_eq!(committed(&sql, "dead", "gone").await, 10);
    assert_eq!(committed(&sql, "dead", "ahead").await, 12);

    let mut stream = subscribe(&mut client, sub_req("dead", "gone")).await;
    assert_eq!(next_offsets(&mut stream, 3).await, [11, 12, 13]);
}

/// A shared consumer whose unsettled records are removed (past the hold) loses their
/// deliveries and goes on with the retained records: acks of removed records are
/// harmless and nothing removed is delivered again.
#[tokio::test]
async fn a_shared_consumer_goes_on_after_its_unsettled_records_are_removed() {
    let server = TestServer::start_with(|c| {
        c.retention.retention_interval = SWEEP_EVERY;
        c.retention.retention_consumer_hold = Duration::from_secs(3600);
    })
    .await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "queue", events(10)).await;
    let cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(300),
        Duration::ZERO,
    );
    let mut worker = subscribe(&mut client, shared_sub("queue", "w", &cfg)).await;
    let held = next_offsets(&mut worker, 4).await;
    assert_eq!(held, [1, 2, 3, 4]);
    backdate(&sql, "queue", 1, 6, "2 hours").await;

    set_retention(&sql, "queue", None, Some(2)).await;
    wait_first_offset(&sql, "queue", 7).await;
    let deliveries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE topic = 'queue' AND \"offset\" < 7",
    )
    .fetch_one(&sql)
    .await
    .unwrap();
    assert_eq!(deliveries, 0, "no delivery row points at a removed record");
    ack_each(&mut client, "queue", "w", &held).await;

    let rest = next_offsets(&mut worker, 4).await;
    assert!(rest.iter().all(|&o| o >= 5), "{rest:?}");
    let mut got: Vec<i64> = rest.into_iter().filter(|&o| o >= 7).collect();
    while got.len() < 4 {
        got.push(next_record(&mut worker).await.offset);
    }
    assert_eq!(got, [7, 8, 9, 10]);
}
