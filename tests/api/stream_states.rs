//! What a Subscribe stream says about itself besides records: attached, standby,
//! caught up, repositioned after a Seek, and heartbeats once idle; and acks tied to
//! the seek epoch so a stale ack cannot undo a Seek.

use std::time::{Duration, Instant};

use crate::helpers::*;
use subscribe_response::Message;

/// The next message that is not a heartbeat.
async fn next_state_or_record(stream: &mut tonic::Streaming<SubscribeResponse>) -> Message {
    loop {
        match next_message(stream).await {
            Message::Heartbeat(_) => continue,
            other => return other,
        }
    }
}

fn seek_to(topic: &str, consumer: &str, offset: i64) -> SeekRequest {
    SeekRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        start: Some(StartPosition {
            position: Some(start_position::Position::Offset(offset)),
        }),
    }
}

/// A durable stream first says it holds the consumer (with the committed offset and
/// epoch), then delivers the stored records, then says it caught up; a second
/// subscriber of the same consumer says it is a standby, and takes over (attached)
/// when the first leaves.
#[tokio::test]
async fn a_durable_stream_says_attached_then_caught_up_and_a_second_one_says_standby() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 3)).await;

    let mut first = subscribe(&mut client, sub_req("t", "c")).await;
    match next_state_or_record(&mut first).await {
        Message::Attached(a) => assert_eq!((a.committed_offset, a.seek_epoch), (0, 0)),
        other => panic!("expected attached, got {other:?}"),
    }
    assert_eq!(next_offsets(&mut first, 3).await, [1, 2, 3]);
    match next_state_or_record(&mut first).await {
        Message::CaughtUp(c) => assert_eq!(c.head_offset, 3),
        other => panic!("expected caught up, got {other:?}"),
    }

    let mut second = subscribe(&mut client, sub_req("t", "c")).await;
    assert!(
        matches!(next_state_or_record(&mut second).await, Message::Standby(_)),
        "the second subscriber waits"
    );
    drop(first);
    match next_state_or_record(&mut second).await {
        Message::Attached(a) => assert_eq!(a.committed_offset, 0, "nothing was acked"),
        other => panic!("expected attached after the takeover, got {other:?}"),
    }
    assert_eq!(next_offsets(&mut second, 3).await, [1, 2, 3]);
}

/// An ephemeral stream says it caught up once the stored records are out, and then
/// delivers live records without saying it again.
#[tokio::test]
async fn an_ephemeral_stream_says_caught_up_once_after_the_stored_records() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 2)).await;
    let mut stream = subscribe(&mut client, sub_req("t", "")).await;
    assert_eq!(next_offsets(&mut stream, 2).await, [1, 2]);
    assert!(matches!(
        next_state_or_record(&mut stream).await,
        Message::CaughtUp(CaughtUp { head_offset: 2 })
    ));
    publish(&mut client, "t", events("e", 2)).await;
    for offset in [3, 4] {
        match next_state_or_record(&mut stream).await {
            Message::Record(r) => assert_eq!(r.offset, offset),
            other => panic!("expected record {offset}, got {other:?}"),
        }
    }
}

/// A Seek on an attached consumer reaches its stream as `repositioned` with the new
/// committed offset and a newer epoch, before the records from there.
#[tokio::test]
async fn a_seek_tells_the_attached_stream_where_it_now_stands() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 5)).await;
    let mut stream = subscribe(&mut client, sub_req("t", "c")).await;
    assert_eq!(next_offsets(&mut stream, 5).await, [1, 2, 3, 4, 5]);

    let sought = client
        .seek(seek_to("t", "c", 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((sought.committed_offset, sought.seek_epoch), (1, 1));
    loop {
        match next_state_or_record(&mut stream).await {
            Message::Repositioned(r) => {
                assert_eq!((r.committed_offset, r.seek_epoch), (1, 1));
                break;
            }
            Message::CaughtUp(_) => continue,
            other => panic!("expected repositioned, got {other:?}"),
        }
    }
    assert_eq!(next_offsets(&mut stream, 4).await, [2, 3, 4, 5]);
}

/// After a Seek back, an ack for a record delivered before the Seek (it carries the
/// older epoch) moves nothing; an ack with the new epoch, or without one, applies.
#[tokio::test]
async fn a_stale_ack_from_before_a_seek_does_not_undo_it() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 10)).await;
    let created = client
        .seek(seek_to("t", "c", 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        created.seek_epoch, 0,
        "a Seek that creates the consumer starts epoch 0"
    );
    let ack_with = |offset, epoch| AckRequest {
        topic: "t".into(),
        consumer: "c".into(),
        offset,
        seek_epoch: epoch,
        offsets: vec![],
    };
    let acked = client.ack(ack_with(8, Some(0))).await.unwrap().into_inner();
    assert_eq!((acked.committed_offset, acked.seek_epoch), (8, 0));

    let sought = client
        .seek(seek_to("t", "c", 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((sought.committed_offset, sought.seek_epoch), (2, 1));
    let stale = client.ack(ack_with(9, Some(0))).await.unwrap().into_inner();
    assert_eq!(
        (stale.committed_offset, stale.seek_epoch),
        (2, 1),
        "the stale ack is answered with the sought position"
    );
    let current = client.ack(ack_with(4, Some(1))).await.unwrap().into_inner();
    assert_eq!(current.committed_offset, 4);
    assert_eq!(
        ack(&mut client, "t", "c", 5).await,
        5,
        "an ack without an epoch applies"
    );
}

/// The first heartbeat comes one full interval after the stream went idle (after its
/// last record), never sooner; later ones follow one interval apart.
#[tokio::test]
async fn heartbeats_come_one_interval_after_the_stream_went_idle() {
    let interval = Duration::from_millis(400);
    let server = TestServer::start_with(|c| c.subscriptions.heartbeat_interval = interval).await;
    let mut client = server.client().await;
    let mut stream = subscribe(&mut client, sub_req("t", "")).await;
    // Idle from the start: the stream heartbeats, then a record interrupts it.
    expect_heartbeat(&mut stream).await;
    // Taken before the publish, so no later than the server's last send: a lower
    // bound on each heartbeat's distance from the stream going idle.
    let idle_since = Instant::now();
    publish(&mut client, "t", events("e", 1)).await;
    next_record(&mut stream).await;

    let mut gaps = Vec::new();
    for _ in 0..3 {
        expect_heartbeat(&mut stream).await;
        gaps.push(idle_since.elapsed());
    }
    eprintln!("heartbeats after the last record (interval {interval:?}): {gaps:?}");
    for (n, gap) in gaps.iter().enumerate() {
        let due = interval * (n as u32 + 1);
        assert!(
            *gap >= due,
            "heartbeat {} came {gap:?} after idle, before {due:?}",
            n + 1
        );
    }
}
