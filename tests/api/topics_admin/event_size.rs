//! A topic's own `max_event_bytes`, checked by Publish while the topic row is locked.

use super::{config, get, reason};
use crate::helpers::*;
use pulsebus::proto::pulsebus::v1::{CreateTopicRequest, PublishRequest, UpdateTopicRequest};
use tonic::Code;
use tonic_types::StatusExt;

/// An event whose JSON text makes it about `len` bytes on the wire.
fn sized(len: usize) -> Event {
    event("essay.submitted", &format!("\"{}\"", "x".repeat(len)))
}

fn request(events: Vec<Event>) -> PublishRequest {
    PublishRequest {
        topic: "essays".into(),
        events,
    }
}

async fn create_essays(client: &mut Client<tonic::transport::Channel>, max_event_bytes: u32) {
    let req = CreateTopicRequest {
        name: "essays".into(),
        config: Some(config(None, None, Some(max_event_bytes))),
    };
    client
        .create_topic(req)
        .await
        .expect("the topic is created");
}

/// The request fails whole with RESOURCE_EXHAUSTED naming the event, the topic and its
/// limit; after the limit is removed the same event is stored.
#[tokio::test]
async fn an_event_over_its_topics_size_limit_is_refused_by_name_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    create_essays(&mut client, 300).await;

    let err = client
        .publish(request(vec![sized(10), sized(1000)]))
        .await
        .expect_err("the large event is refused");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(reason(&err), "LIMIT_EXCEEDED");
    let meta = err.get_details_error_info().unwrap().metadata;
    assert_eq!(meta["field"], "events[1]");
    assert_eq!(meta["topic"], "essays");
    assert_eq!(meta["limit"], "300");
    assert!(
        err.message().contains("max_event_bytes"),
        "{}",
        err.message()
    );
    let info = get(&mut client, "essays").await.unwrap();
    assert_eq!(
        info.head_offset, 0,
        "the small event of the batch is not stored"
    );

    assert_eq!(
        publish(&mut client, "essays", vec![sized(10)]).await[0].offset,
        1
    );
    let remove = UpdateTopicRequest {
        name: "essays".into(),
        config: Some(config(None, None, Some(0))),
    };
    client
        .update_topic(remove)
        .await
        .expect("the limit is removed");
    assert_eq!(
        publish(&mut client, "essays", vec![sized(1000)]).await[0].offset,
        2
    );
}

/// Concurrent publishes share group commits: each large request fails alone and every
/// small one is stored, with gapless offsets.
#[tokio::test]
async fn a_request_over_the_limit_fails_alone_among_concurrent_publishes() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    create_essays(&mut client, 300).await;

    let calls = (0..30).map(|i| {
        let mut client = client.clone();
        let len = if i % 5 == 0 { 1000 } else { 10 };
        tokio::spawn(async move { (len, client.publish(request(vec![sized(len)])).await) })
    });
    let mut stored = 0;
    for call in calls {
        match call.await.unwrap() {
            (10, Ok(_)) => stored += 1,
            (1000, Err(err)) => assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}"),
            (len, outcome) => panic!("a publish of {len} bytes answered {outcome:?}"),
        }
    }
    assert_eq!(stored, 24);
    let offsets: Vec<i64> = read_all(&mut client, "essays")
        .await
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, (1..=24).collect::<Vec<_>>());
}
