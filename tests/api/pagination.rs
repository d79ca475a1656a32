//! ListTopics and ListConsumers a page at a time.

use std::collections::BTreeSet;

use crate::helpers::*;
use tonic::Code;
use tonic_types::StatusExt;

/// Paging through 25 topics 10 at a time returns every topic once, in name order, and
/// the last page has no next token.
#[tokio::test]
async fn list_topics_pages_cover_every_topic_once_in_order() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for i in 0..25 {
        publish(&mut client, &format!("topic-{i:02}"), events("e", 1)).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let req = ListTopicsRequest {
            page_size: 10,
            page_token: token.clone(),
        };
        let page = client.list_topics(req).await.unwrap().into_inner();
        pages += 1;
        assert!(page.topics.len() <= 10);
        names.extend(page.topics.into_iter().map(|t| t.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..25).map(|i| format!("topic-{i:02}")).collect();
    assert_eq!(names, expected);
    assert_eq!(pages, 3);
}

/// Consumers come a page at a time too; a consumer created between pages after the
/// current position still shows up, none repeats.
#[tokio::test]
async fn list_consumers_pages_cover_every_consumer_once() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 1)).await;
    for i in 0..7 {
        create_consumer(&mut client, &format!("c{i}")).await;
    }
    let req = |token: String| ListConsumersRequest {
        topic: "t".into(),
        page_size: 3,
        page_token: token,
    };
    let first = client
        .list_consumers(req(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.consumers.len(), 3);
    create_consumer(&mut client, "c9").await;
    let mut seen: Vec<String> = first.consumers.into_iter().map(|c| c.name).collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = client
            .list_consumers(req(token))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.consumers.into_iter().map(|c| c.name));
        token = page.next_page_token;
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no consumer repeats: {seen:?}");
    assert_eq!(seen.len(), 8, "{seen:?}");
}

/// A token that did not come from the RPC, or a page size over the maximum, is
/// INVALID_ARGUMENT naming the field, with a BadRequest detail.
#[tokio::test]
async fn bad_page_tokens_and_sizes_are_invalid_arguments_naming_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let bad_token = ListTopicsRequest {
        page_size: 0,
        page_token: "not-a-token".into(),
    };
    let err = client.list_topics(bad_token).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("page_token:"),
        "{}",
        err.message()
    );
    let violation = &err.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "page_token");

    let too_big = ListTopicsRequest {
        page_size: 5000,
        page_token: String::new(),
    };
    let err = client.list_topics(too_big).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("page_size:"), "{}", err.message());
}

/// Creates consumer `name` on topic `t` at the start (a Seek creates it).
async fn create_consumer(client: &mut Client<tonic::transport::Channel>, name: &str) {
    let req = SeekRequest {
        topic: "t".into(),
        consumer: name.into(),
        start: Some(StartPosition {
            position: Some(start_position::Position::Earliest(
                start_position::Earliest {},
            )),
        }),
    };
    client.seek(req).await.unwrap();
}
