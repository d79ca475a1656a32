//! Subscribe: catch-up from PostgreSQL, then live tail; start positions; type filters;
//! heartbeats.

use crate::helpers::*;
use tonic::Code;

fn start(position: start_position::Position) -> Option<StartPosition> {
    Some(StartPosition {
        position: Some(position),
    })
}

/// A subscriber first receives the stored events, then new ones as they commit.
#[tokio::test]
async fn a_subscriber_catches_up_then_tails_live() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "lessons", events("lesson.published", 3)).await;

    let mut stream = subscribe(&mut client, sub_req("lessons", "")).await;
    assert_eq!(next_offsets(&mut stream, 3).await, [1, 2, 3]);
    expect_heartbeat(&mut stream).await;
    publish(&mut client, "lessons", events("lesson.updated", 2)).await;

    let live = next_record(&mut stream).await;
    assert_eq!(live.offset, 4);
    assert_eq!(live.event.unwrap().r#type, "lesson.updated");
    assert_eq!(next_record(&mut stream).await.offset, 5);
}

/// Subscribing before the first publish works: the topic is created and tailed.
#[tokio::test]
async fn subscribing_to_a_topic_nobody_wrote_yet_waits_for_its_first_event() {
    let server = quick_server().await;
    let mut client = server.client().await;

    let mut stream = subscribe(&mut client, sub_req("future", "early-bird")).await;
    expect_heartbeat(&mut stream).await;
    publish(&mut client, "future", events("x", 1)).await;

    assert_eq!(next_record(&mut stream).await.offset, 1);
}

/// latest skips the stored events; an offset starts there; a time starts at the first
/// event appended at or after it.
#[tokio::test]
async fn start_positions_pick_where_delivery_begins() {
    use start_position::Position;
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("old", 3)).await;
    let cut = publish(&mut client, "t", events("new", 2)).await[0].appended_at;

    let mut latest = subscribe(
        &mut client,
        SubscribeRequest {
            start: start(Position::Latest(Default::default())),
            ..sub_req("t", "")
        },
    )
    .await;
    let mut from_2 = subscribe(
        &mut client,
        SubscribeRequest {
            start: start(Position::Offset(2)),
            ..sub_req("t", "c2")
        },
    )
    .await;
    let mut from_time = subscribe(
        &mut client,
        SubscribeRequest {
            start: start(Position::Time(cut.unwrap())),
            ..sub_req("t", "")
        },
    )
    .await;
    expect_heartbeat(&mut latest).await;
    publish(&mut client, "t", events("newest", 1)).await;

    assert_eq!(next_record(&mut latest).await.offset, 6);
    assert_eq!(next_offsets(&mut from_2, 5).await, [2, 3, 4, 5, 6]);
    assert_eq!(next_offsets(&mut from_time, 3).await, [4, 5, 6]);
}

/// A start offset beyond the next one to be appended is FAILED_PRECONDITION.
#[tokio::test]
async fn a_start_offset_past_the_head_is_failed_precondition() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 2)).await;

    let req = SubscribeRequest {
        start: start(start_position::Position::Offset(9)),
        ..sub_req("t", "c")
    };
    let err = client.subscribe(req).await.unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("start.offset"), "{}", err.message());
}

/// A type filter delivers only matching events; the others count as passed, so once
/// the delivered ones are acked the consumer has no lag.
#[tokio::test]
async fn a_type_filter_delivers_matches_and_counts_the_rest_as_passed() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let mixed = [
        "quiz.submitted",
        "badge.awarded",
        "quiz.submitted",
        "badge.awarded",
        "badge.awarded",
    ];
    publish(
        &mut client,
        "mix",
        mixed.iter().map(|t| event(t, "{}")).collect(),
    )
    .await;

    let req = SubscribeRequest {
        types: vec!["quiz.submitted".into()],
        ..sub_req("mix", "quizzes")
    };
    let mut stream = subscribe(&mut client, req).await;
    assert_eq!(next_offsets(&mut stream, 2).await, [1, 3]);
    ack(&mut client, "mix", "quizzes", 3).await;

    let lag = || async {
        let req = ListConsumersRequest {
            topic: "mix".into(),
            ..Default::default()
        };
        client
            .clone()
            .list_consumers(req)
            .await
            .unwrap()
            .into_inner()
            .consumers[0]
            .lag
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while lag().await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "filtered events were never counted as passed"
        );
        expect_heartbeat(&mut stream).await;
    }
}

/// An idle stream gets heartbeats carrying the head and the committed offset.
#[tokio::test]
async fn idle_streams_get_heartbeats_with_head_and_committed_offset() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "quiet", events("x", 2)).await;
    let mut stream = subscribe(&mut client, sub_req("quiet", "watcher")).await;
    next_offsets(&mut stream, 2).await;
    ack(&mut client, "quiet", "watcher", 1).await;

    let beat = expect_heartbeat(&mut stream).await;
    let beat = if beat.committed_offset == 1 {
        beat
    } else {
        expect_heartbeat(&mut stream).await
    };

    assert_eq!((beat.head_offset, beat.committed_offset), (2, 1));
}

/// Large events fill catch-up pages by bytes before rows: every record still arrives,
/// in order, from PostgreSQL and then from the in-memory tail window.
#[tokio::test]
async fn large_events_arrive_complete_across_byte_limited_pages() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let big = Event {
        data: Some(event::Data::BinaryData(vec![7; 32 * 1024])),
        ..event("big", "")
    };
    for _ in 0..10 {
        publish(&mut client, "big", vec![big.clone(); 30]).await;
    }

    let mut stream = subscribe(&mut client, sub_req("big", "")).await;

    assert_eq!(
        next_offsets(&mut stream, 300).await,
        (1..=300).collect::<Vec<_>>()
    );
}
