//! Exclusive consumers take individual acks: one process can work on many records at
//! once and ack them out of order; the committed offset is the low-water mark.

use super::ack_each;
use crate::helpers::*;

/// Acks out of order wait above the committed offset, which moves over each
/// consecutive run; a reconnect resumes after the low-water mark.
#[tokio::test]
async fn individual_acks_move_the_committed_offset_as_a_low_water_mark() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 5)).await;
    let mut stream = subscribe(&mut client, sub_req("t", "c")).await;
    assert_eq!(next_offsets(&mut stream, 5).await, [1, 2, 3, 4, 5]);

    let committed = |ack: AckResponse| ack.committed_offset;
    let mut ack = async |offsets: &[i64]| {
        let req = AckRequest {
            topic: "t".into(),
            consumer: "c".into(),
            offsets: offsets.to_vec(),
            ..Default::default()
        };
        committed(client.ack(req).await.unwrap().into_inner())
    };
    assert_eq!(ack(&[3, 5]).await, 0, "1 and 2 are not acked yet");
    assert_eq!(ack(&[1]).await, 1);
    assert_eq!(ack(&[2]).await, 3, "moves over the acked 3");
    assert_eq!(ack(&[4]).await, 5);
    drop(stream);

    publish(&mut server.client().await, "t", events("e", 1)).await;
    let mut again = subscribe(&mut server.client().await, sub_req("t", "c")).await;
    assert_eq!(next_record(&mut again).await.offset, 6);
}

/// An individual ack from before a Seek (older epoch) moves nothing; the Seek also
/// forgets acks waiting above the old position.
#[tokio::test]
async fn individual_acks_from_before_a_seek_are_stale() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 6)).await;
    let mut stream = subscribe(&mut client, sub_req("t", "c")).await;
    next_offsets(&mut stream, 6).await;
    ack_each(&mut client, "t", "c", &[2, 3]).await;
    let seek = SeekRequest {
        topic: "t".into(),
        consumer: "c".into(),
        start: Some(StartPosition {
            position: Some(start_position::Position::Offset(1)),
        }),
    };
    let epoch = client.seek(seek).await.unwrap().into_inner().seek_epoch;
    let stale = AckRequest {
        topic: "t".into(),
        consumer: "c".into(),
        offsets: vec![1, 4],
        seek_epoch: Some(epoch - 1),
        ..Default::default()
    };
    assert_eq!(
        client
            .ack(stale)
            .await
            .unwrap()
            .into_inner()
            .committed_offset,
        0
    );
    // 2 and 3 were forgotten by the Seek: acking 1 moves the mark to 1 only.
    let fresh = AckRequest {
        topic: "t".into(),
        consumer: "c".into(),
        offsets: vec![1],
        seek_epoch: Some(epoch),
        ..Default::default()
    };
    assert_eq!(
        client
            .ack(fresh)
            .await
            .unwrap()
            .into_inner()
            .committed_offset,
        1
    );
}

/// A nack of an exclusive consumer rewinds its stream after the delay: it says
/// `repositioned`, and everything after the committed offset comes again in order (the
/// nacked record included), as after a reconnect.
#[tokio::test]
async fn a_nack_rewinds_an_exclusive_stream_after_the_delay() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 5)).await;
    let mut stream = subscribe(&mut client, sub_req("t", "c")).await;
    assert_eq!(next_offsets(&mut stream, 5).await, [1, 2, 3, 4, 5]);
    ack_each(&mut client, "t", "c", &[1, 2, 5]).await;

    let delay = std::time::Duration::from_millis(300);
    let nacked_at = std::time::Instant::now();
    let nack = NackRequest {
        topic: "t".into(),
        consumer: "c".into(),
        offsets: vec![4],
        delay: Some(super::proto_duration(delay)),
        ..Default::default()
    };
    client.nack(nack).await.unwrap();
    let repositioned = loop {
        match next_message(&mut stream).await {
            subscribe_response::Message::Repositioned(r) => break r,
            subscribe_response::Message::Record(r) => {
                panic!("record {} before the rewind", r.offset)
            }
            _ => continue,
        }
    };
    assert!(nacked_at.elapsed() >= delay, "not before the delay");
    assert_eq!(repositioned.committed_offset, 2);
    assert_eq!(
        next_offsets(&mut stream, 3).await,
        [3, 4, 5],
        "5 comes again: its ack was after the nacked 4"
    );
}

/// `Nack { dead_letter }` on an exclusive consumer parks the record in the dead-letter
/// topic and counts it as acked: the low-water mark moves over it.
#[tokio::test]
async fn a_dead_letter_nack_of_an_exclusive_consumer_parks_and_passes_the_record() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 3)).await;
    let mut stream = subscribe(&mut client, sub_req("t", "c")).await;
    assert_eq!(next_offsets(&mut stream, 3).await, [1, 2, 3]);
    let nack = NackRequest {
        topic: "t".into(),
        consumer: "c".into(),
        offsets: vec![2],
        dead_letter: true,
        reason: "unreadable".into(),
        ..Default::default()
    };
    client.nack(nack).await.unwrap();
    ack_each(&mut client, "t", "c", &[1, 3]).await;

    let parked = read_all(&mut client, "t.dlq").await;
    assert_eq!(parked.len(), 1);
    let attributes = &parked[0].event.as_ref().unwrap().attributes;
    assert_eq!(attributes["pulsebus.dead_letter.offset"], "2");
    assert_eq!(attributes["pulsebus.dead_letter.reason"], "unreadable");
    let info = super::consumer_info(&mut client, "t", "c").await;
    assert_eq!((info.committed_offset, info.dead_lettered), (3, 1));
}
