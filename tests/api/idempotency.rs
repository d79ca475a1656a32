//! A retried publish with the same event id is not stored twice.

use crate::helpers::*;
use tonic::Code;

fn with_id(id: &str) -> Event {
    Event {
        id: id.to_owned(),
        ..event("badge.awarded", r#"{"badge": "streak-7"}"#)
    }
}

/// Re-publishing an id returns the original offset with duplicate = true and stores nothing.
#[tokio::test]
async fn a_retried_event_returns_its_original_offset_as_a_duplicate() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let id = uuid::Uuid::new_v4().to_string();
    let first = publish(&mut client, "badges", vec![with_id(&id)])
        .await
        .remove(0);
    publish(&mut client, "badges", vec![event("other", "{}")]).await;

    let retry = publish(&mut client, "badges", vec![with_id(&id)])
        .await
        .remove(0);

    assert!(retry.duplicate);
    assert_eq!(
        (retry.offset, &retry.id, retry.appended_at),
        (first.offset, &first.id, first.appended_at)
    );
    assert_eq!(read_all(&mut client, "badges").await.len(), 2);
}

/// In a batch mixing stored and new ids, only the new ones take offsets, consecutively.
#[tokio::test]
async fn a_partly_retried_batch_stores_only_the_new_events() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let old = uuid::Uuid::new_v4().to_string();
    publish(&mut client, "badges", vec![with_id(&old)]).await;

    let results = publish(
        &mut client,
        "badges",
        vec![event("new", "{}"), with_id(&old), event("new", "{}")],
    )
    .await;

    let summary: Vec<(i64, bool)> = results.iter().map(|r| (r.offset, r.duplicate)).collect();
    assert_eq!(summary, [(2, false), (1, true), (3, false)]);
    let offsets: Vec<i64> = read_all(&mut client, "badges")
        .await
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, [1, 2, 3]);
}

/// The same id in another topic is ALREADY_EXISTS, and the whole batch is refused.
#[tokio::test]
async fn an_id_stored_in_another_topic_is_already_exists_and_stores_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let id = uuid::Uuid::new_v4().to_string();
    publish(&mut client, "first", vec![with_id(&id)]).await;
    publish(&mut client, "second", vec![event("seed", "{}")]).await;

    let err = client
        .publish(PublishRequest {
            topic: "second".into(),
            events: vec![event("fresh", "{}"), with_id(&id)],
        })
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(
        err.message().contains(&id) && err.message().contains("first"),
        "{}",
        err.message()
    );
    assert_eq!(read_all(&mut client, "second").await.len(), 1);
}

/// Concurrent retries of one id through two servers store it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_through_two_servers_store_an_id_once() {
    let a = TestServer::start().await;
    let b = TestServer::start_on(a.database_url.clone(), |_| {}).await;
    let ids: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();

    async fn send(server: &TestServer, ids: &[String]) {
        let mut client = server.client().await;
        for id in ids {
            publish(&mut client, "retries", vec![with_id(id)]).await;
        }
    }
    tokio::join!(send(&a, &ids), send(&b, &ids), send(&a, &ids));

    let records = read_all(&mut a.client().await, "retries").await;
    assert_eq!(records.len(), ids.len());
    assert_eq!(records.last().unwrap().offset, ids.len() as i64);
}
