//! Read: pages of the log by offset, with type filters.

use crate::helpers::*;

async fn seeded(n: usize) -> (TestServer, Client<tonic::transport::Channel>) {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let events = (0..n)
        .map(|i| event(if i % 2 == 0 { "even" } else { "odd" }, "{}"))
        .collect();
    publish(&mut client, "log", events).await;
    (server, client)
}

fn req(from_offset: i64, limit: u32, types: &[&str]) -> ReadRequest {
    ReadRequest {
        topic: "log".into(),
        from_offset,
        limit,
        types: types.iter().map(|t| t.to_string()).collect(),
    }
}

/// from_offset is inclusive and limit bounds the page; head_offset is the topic's head.
#[tokio::test]
async fn a_page_starts_at_from_offset_and_holds_at_most_limit_records() {
    let (_server, mut client) = seeded(10).await;

    let page = client.read(req(4, 3, &[])).await.unwrap().into_inner();

    assert_eq!(
        page.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_eq!(page.head_offset, 10);
    assert!(page.records.iter().all(|r| r.topic == "log"));
}

/// limit 0 means 100 and larger limits are capped at 1000.
#[tokio::test]
async fn limit_defaults_to_100_and_is_capped_at_1000() {
    let (_server, mut client) = seeded(1000).await;
    publish(&mut client, "log", vec![event("extra", "{}"); 5]).await;

    assert_eq!(
        client
            .read(req(0, 0, &[]))
            .await
            .unwrap()
            .into_inner()
            .records
            .len(),
        100
    );
    assert_eq!(
        client
            .read(req(0, 5000, &[]))
            .await
            .unwrap()
            .into_inner()
            .records
            .len(),
        1000
    );
}

/// A type filter returns only matching events, keeping their offsets.
#[tokio::test]
async fn a_type_filter_keeps_only_matching_events() {
    let (_server, mut client) = seeded(6).await;

    let page = client.read(req(1, 0, &["odd"])).await.unwrap().into_inner();

    assert_eq!(
        page.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [2, 4, 6]
    );
}

/// Reading past the head returns an empty page and the head.
#[tokio::test]
async fn reading_past_the_head_is_an_empty_page() {
    let (_server, mut client) = seeded(3).await;

    let page = client.read(req(4, 0, &[])).await.unwrap().into_inner();

    assert!(page.records.is_empty());
    assert_eq!(page.head_offset, 3);
}
