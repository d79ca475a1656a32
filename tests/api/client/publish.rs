//! Publishing through the client: ids assigned before the first attempt make a retry
//! safe; typed payloads round-trip; a batcher tells each caller its own offset.

use pc::event::PayloadExt;
use pc::proto::edupulse::events::v1::LessonPublished;
use pulsebus_client as pc;

use super::{client_of, json_events};
use crate::helpers::*;

/// Sending the same events again (what a retry after a lost answer does) stores them
/// once: the second answer says `duplicate`, with the same offsets.
#[tokio::test]
async fn a_publish_sent_twice_is_stored_once() {
    let server = TestServer::start().await;
    let client = client_of(&server);
    let events = json_events("quiz.submitted", 3);

    let first = client.publish("quizzes", events.clone()).await.unwrap();
    let again = client.publish("quizzes", events).await.unwrap();

    let offsets = |r: &[pc::proto::pulsebus::v1::PublishResult]| {
        r.iter().map(|r| r.offset).collect::<Vec<_>>()
    };
    assert_eq!(offsets(&first), [1, 2, 3]);
    assert_eq!(offsets(&again), [1, 2, 3]);
    assert!(again.iter().all(|r| r.duplicate));
    assert_eq!(
        read_all(&mut server.client().await, "quizzes").await.len(),
        3
    );
}

/// An EduPulse message goes out as `proto_data` and comes back as the same message.
#[tokio::test]
async fn an_edupulse_payload_round_trips() {
    let server = TestServer::start().await;
    let client = client_of(&server);
    let lesson = LessonPublished {
        lesson_id: "42".into(),
        title: "Fractions".into(),
        tags: vec!["math".into()],
        ..Default::default()
    };
    client
        .publish("lessons", vec![pc::event::proto(&lesson)])
        .await
        .unwrap();

    let mut consumer = client
        .consumer(pc::ConsumerOptions::new("lessons", "search"))
        .unwrap();
    let message = super::next_message(&mut consumer).await;
    assert_eq!(message.event().r#type, "lesson.published");
    assert_eq!(
        message.record().decode_proto::<LessonPublished>().unwrap(),
        lesson
    );
    message.ack().await.unwrap();
}

/// Events from many callers at once go out in batches; each caller gets its own
/// offset, and a bad event fails its caller alone.
#[tokio::test]
async fn a_batcher_tells_each_caller_its_own_offset_and_a_bad_event_fails_alone() {
    let server = TestServer::start().await;
    let batcher = pc::Batcher::new(client_of(&server), pc::BatchOptions::default());
    let mut calls = Vec::new();
    for i in 0..50 {
        let batcher = batcher.clone();
        let mut event = pc::event::json("quiz.submitted", &serde_json::json!({ "n": i })).unwrap();
        if i == 7 {
            event.r#type.clear(); // a type is required
        }
        calls.push(tokio::spawn(async move {
            batcher.publish("quizzes", event).await
        }));
    }
    let mut offsets = Vec::new();
    let mut failed = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(result) => offsets.push(result.offset),
            Err(e) => {
                assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");
                failed += 1;
            }
        }
    }
    offsets.sort();
    assert_eq!(failed, 1);
    assert_eq!(offsets, (1..=49).collect::<Vec<i64>>());
}
