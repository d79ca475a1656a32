//! Redelivery: nacks with and without a delay, back-off that grows and is capped, ack
//! deadlines that pass or are extended, and subscribers that leave.

use std::time::{Duration, Instant};

use super::{ack_each, config, nack, proto_duration, shared_sub};
use crate::helpers::*;

/// The next record of a stream, skipping everything else.
async fn record(stream: &mut tonic::Streaming<SubscribeResponse>) -> Record {
    next_record(stream).await
}

/// How long PostgreSQL will keep a waiting record back, from now.
async fn scheduled_delay(server: &TestServer, offset: i64) -> Duration {
    let (ms,): (f64,) = sqlx::query_as(
        "SELECT (extract(epoch FROM due_at - clock_timestamp()) * 1000)::float8 FROM deliveries \
         WHERE \"offset\" = $1",
    )
    .bind(offset)
    .fetch_one(&server.sql().await)
    .await
    .unwrap();
    Duration::from_millis(ms.max(0.0) as u64)
}

/// A nack without a delay redelivers after the consumer's back-off, which doubles per
/// attempt and stops growing at max_backoff; every redelivery says its attempt.
#[tokio::test]
async fn nacks_without_a_delay_back_off_doubling_up_to_the_cap() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let mut cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::from_millis(100),
    );
    cfg.max_backoff = Some(proto_duration(Duration::from_millis(400)));
    let mut stream = subscribe(&mut client, shared_sub("mails", "sender", &cfg)).await;
    publish(&mut client, "mails", events("mail", 1)).await;

    let mut delivered = record(&mut stream).await;
    assert_eq!(delivered.delivery_attempt, 1);
    let mut scheduled = Vec::new();
    for attempt in 2..=5u32 {
        let nacked_at = Instant::now();
        nack(&mut client, "mails", "sender", &[delivered.offset], None).await;
        scheduled.push(scheduled_delay(&server, 1).await);
        delivered = record(&mut stream).await;
        let waited = nacked_at.elapsed();
        assert_eq!(delivered.delivery_attempt, attempt);
        let backoff =
            Duration::from_millis(100 * (1 << (attempt - 2))).min(Duration::from_millis(400));
        assert!(
            waited >= backoff,
            "attempt {attempt} came after {waited:?}, before its back-off {backoff:?}"
        );
    }
    eprintln!("scheduled back-offs after each nack: {scheduled:?}");
    assert!(
        scheduled[3] <= Duration::from_millis(400),
        "the back-off stops at max_backoff: {scheduled:?}"
    );
    ack_each(&mut client, "mails", "sender", &[1]).await;
}

/// A nack with a delay keeps the record back for that long, then redelivers it.
#[tokio::test]
async fn a_nack_with_a_delay_redelivers_after_the_delay() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::from_secs(60),
    );
    let mut stream = subscribe(&mut client, shared_sub("mails", "sender", &cfg)).await;
    publish(&mut client, "mails", events("mail", 2)).await;
    let first = record(&mut stream).await;
    let second = record(&mut stream).await;
    assert_eq!((first.offset, second.offset), (1, 2));

    let delay = Duration::from_millis(500);
    let nacked_at = Instant::now();
    nack(&mut client, "mails", "sender", &[1], Some(delay)).await;
    ack_each(&mut client, "mails", "sender", &[2]).await;
    let again = record(&mut stream).await;
    assert_eq!((again.offset, again.delivery_attempt), (1, 2));
    assert!(nacked_at.elapsed() >= delay, "not before the delay");
}

/// ExtendAckDeadline keeps a slow record with its subscriber past the deadline (the
/// other subscriber never sees it); a record that is not extended goes to the other
/// subscriber once its deadline passes, as attempt 2.
#[tokio::test]
async fn extending_the_deadline_keeps_a_slow_record_and_an_expired_one_moves_on() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let deadline = Duration::from_secs(1);
    let cfg = config(DeliveryMode::Shared, deadline, Duration::ZERO);
    let mut slow = subscribe(&mut client, shared_sub("jobs", "w", &cfg)).await;
    publish(&mut client, "jobs", events("job", 1)).await;
    let held = record(&mut slow).await;
    let mut other = subscribe(&mut server.client().await, shared_sub("jobs", "w", &cfg)).await;

    // Keep extending for three deadlines while the other subscriber idles.
    let extend = ExtendAckDeadlineRequest {
        topic: "jobs".into(),
        consumer: "w".into(),
        offsets: vec![held.offset],
        deadline: Some(proto_duration(deadline)),
    };
    // A slow handler: it says "still working" four times a deadline, for three.
    let mut pace = tokio::time::interval(deadline / 4);
    for _ in 0..12 {
        pace.tick().await;
        client.extend_ack_deadline(extend.clone()).await.unwrap();
        // The other stream only heartbeats meanwhile.
        expect_heartbeat(&mut other).await;
    }
    ack_each(&mut client, "jobs", "w", &[held.offset]).await;

    publish(&mut client, "jobs", events("job", 1)).await;
    let second = tokio::select! {
        r = record(&mut slow) => r,
        r = record(&mut other) => r,
    };
    assert_eq!((second.offset, second.delivery_attempt), (2, 1));
    // Whoever got it does nothing: after the deadline someone gets it again.
    let again = tokio::select! {
        r = record(&mut slow) => r,
        r = record(&mut other) => r,
    };
    assert_eq!((again.offset, again.delivery_attempt), (2, 2));
}

/// When a subscriber's stream ends, the records it held go to another subscriber at
/// once (not after the deadline), as their next attempt.
#[tokio::test]
async fn a_subscriber_that_leaves_gives_its_records_to_the_others() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    let mut leaving = subscribe(&mut client, shared_sub("jobs", "w", &cfg)).await;
    publish(&mut client, "jobs", events("job", 3)).await;
    let held: Vec<i64> = next_offsets(&mut leaving, 3).await;
    let mut staying = subscribe(&mut server.client().await, shared_sub("jobs", "w", &cfg)).await;
    drop(leaving);

    let mut again = Vec::new();
    for _ in 0..3 {
        let r = record(&mut staying).await;
        assert_eq!(r.delivery_attempt, 2);
        again.push(r.offset);
    }
    again.sort();
    assert_eq!(again, held);
}
