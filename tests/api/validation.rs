//! Every bad input gets a clear status naming the field and the rule, and changes nothing.

use crate::helpers::*;
use tonic::Code;

/// Seeds topic "audit" with one event, sends `events` to `topic`, and returns the
/// error after checking that the log did not change.
async fn rejected(server: &TestServer, topic: &str, events: Vec<Event>) -> tonic::Status {
    let mut client = server.client().await;
    publish(&mut client, "audit", vec![event("seed", "{}")]).await;
    let before = event_count(server).await;
    let err = client
        .publish(PublishRequest {
            topic: topic.to_owned(),
            events,
        })
        .await
        .expect_err("the request is rejected");
    assert_eq!(
        event_count(server).await,
        before,
        "a rejected request stored something"
    );
    err
}

async fn event_count(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&server.sql().await)
        .await
        .unwrap()
}

fn assert_status(err: &tonic::Status, code: Code, words: &[&str]) {
    assert_eq!(err.code(), code, "{err:?}");
    for w in words {
        assert!(err.message().contains(w), "{:?} lacks {w:?}", err.message());
    }
}

/// A batch whose third event is invalid stores none of the batch.
#[tokio::test]
async fn one_bad_event_fails_the_whole_batch() {
    let server = TestServer::start().await;
    let bad = Event {
        r#type: String::new(),
        ..event("x", "{}")
    };
    let err = rejected(
        &server,
        "audit",
        vec![event("ok", "{}"), event("ok", "{}"), bad],
    )
    .await;
    assert_status(&err, Code::InvalidArgument, &["events[2].type", "required"]);
}

/// Topic names must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}.
#[tokio::test]
async fn bad_topic_names_are_invalid_argument() {
    let server = TestServer::start().await;
    for topic in ["", "has space", ".dot-first", &"x".repeat(129)] {
        let err = rejected(&server, topic, vec![event("x", "{}")]).await;
        assert_status(&err, Code::InvalidArgument, &["topic", "letters, digits"]);
    }
}

/// Ids must be UUIDs, unique within the batch.
#[tokio::test]
async fn bad_and_repeated_ids_are_invalid_argument() {
    let server = TestServer::start().await;
    let bad = Event {
        id: "not-a-uuid".into(),
        ..event("x", "{}")
    };
    let err = rejected(&server, "audit", vec![event("x", "{}"), bad]).await;
    assert_status(
        &err,
        Code::InvalidArgument,
        &["events[1].id", "not-a-uuid", "UUID"],
    );

    let id = uuid::Uuid::new_v4().to_string();
    let twice = Event {
        id,
        ..event("x", "{}")
    };
    let err = rejected(&server, "audit", vec![twice.clone(), twice]).await;
    assert_status(&err, Code::InvalidArgument, &["events[1].id", "events[0]"]);
}

/// Empty batches, invalid JSON, bad timestamps and missing Any type URLs are refused.
#[tokio::test]
async fn malformed_events_are_invalid_argument() {
    let server = TestServer::start().await;
    let err = rejected(&server, "audit", vec![]).await;
    assert_status(&err, Code::InvalidArgument, &["events", "at least one"]);

    let err = rejected(&server, "audit", vec![event("x", "{not json")]).await;
    assert_status(
        &err,
        Code::InvalidArgument,
        &["events[0].text_data", "JSON"],
    );

    let late = Event {
        time: Some(prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        }),
        ..event("x", "{}")
    };
    let err = rejected(&server, "audit", vec![late]).await;
    assert_status(&err, Code::InvalidArgument, &["events[0].time"]);

    let untyped = Event {
        data: Some(event::Data::ProtoData(prost_types::Any::default())),
        ..event("x", "")
    };
    let err = rejected(&server, "audit", vec![untyped]).await;
    assert_status(
        &err,
        Code::InvalidArgument,
        &["events[0].proto_data.type_url"],
    );
}

/// Events, requests and batches over their limits are RESOURCE_EXHAUSTED naming the limit.
#[tokio::test]
async fn oversized_input_is_resource_exhausted() {
    let server = TestServer::start_with(|c| {
        c.limits.max_event_bytes = 1000;
        c.limits.max_request_bytes = 5000;
        c.limits.max_batch_events = 10;
    })
    .await;
    let sized = |n| Event {
        data: Some(event::Data::BinaryData(vec![7; n])),
        ..event("blob", "")
    };
    let err = rejected(&server, "audit", vec![sized(10), sized(2000)]).await;
    assert_status(
        &err,
        Code::ResourceExhausted,
        &["events[1]", "max-event-bytes"],
    );

    let err = rejected(&server, "audit", vec![sized(900); 8]).await;
    assert_status(
        &err,
        Code::ResourceExhausted,
        &["request", "max-request-bytes"],
    );

    let err = rejected(&server, "audit", vec![sized(1); 11]).await;
    assert_status(
        &err,
        Code::ResourceExhausted,
        &["events", "max-batch-events"],
    );
}

/// Read: an unknown topic is NOT_FOUND; a bad name or negative offset INVALID_ARGUMENT.
#[tokio::test]
async fn bad_reads_are_not_found_or_invalid_argument() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let read = |topic: &str, from_offset| ReadRequest {
        topic: topic.to_owned(),
        from_offset,
        ..Default::default()
    };

    let err = client.read(read("nobody-wrote-here", 0)).await.unwrap_err();
    assert_status(&err, Code::NotFound, &["nobody-wrote-here"]);
    let err = client.read(read("bad name", 0)).await.unwrap_err();
    assert_status(&err, Code::InvalidArgument, &["topic"]);
    publish(&mut client, "t", vec![event("x", "{}")]).await;
    let err = client.read(read("t", -5)).await.unwrap_err();
    assert_status(&err, Code::InvalidArgument, &["from_offset"]);
}

/// Subscribe, ListConsumers and DeleteConsumer reject bad input with the field named.
#[tokio::test]
async fn bad_subscription_requests_name_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "t", vec![event("x", "{}")]).await;
    let sub = |f: fn(&mut SubscribeRequest)| {
        let mut req = SubscribeRequest {
            topic: "t".into(),
            consumer: "c".into(),
            ..Default::default()
        };
        f(&mut req);
        req
    };
    let cases: [(SubscribeRequest, &str); 5] = [
        (sub(|r| r.topic = "no spaces".into()), "topic"),
        (sub(|r| r.consumer = "-dash-first".into()), "consumer"),
        (sub(|r| r.types = vec![String::new()]), "types[0]"),
        (sub(|r| r.max_in_flight = 1_000_000), "max_in_flight"),
        (
            sub(|r| {
                r.start = Some(StartPosition {
                    position: Some(start_position::Position::Offset(0)),
                })
            }),
            "start.offset",
        ),
    ];
    for (req, field) in cases {
        let err = client.subscribe(req).await.expect_err("rejected");
        assert_status(&err, Code::InvalidArgument, &[field]);
    }

    let err = client
        .list_consumers(ListConsumersRequest {
            topic: "nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&err, Code::NotFound, &["nobody"]);
    let delete = DeleteConsumerRequest {
        topic: "nobody".into(),
        consumer: "c".into(),
    };
    assert_status(
        &client.delete_consumer(delete).await.unwrap_err(),
        Code::NotFound,
        &["nobody"],
    );
    let delete = DeleteConsumerRequest {
        topic: "t".into(),
        consumer: String::new(),
    };
    assert_status(
        &client.delete_consumer(delete).await.unwrap_err(),
        Code::InvalidArgument,
        &["consumer"],
    );
}
