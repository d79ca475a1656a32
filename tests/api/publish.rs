//! Publish: offsets, assigned fields, payload kinds, and the log in SQL.

use crate::helpers::*;
use prost::Message;
use pulsebus::proto::edupulse::events::v1::LessonPublished;

/// The first events of a topic get offsets 1, 2, 3 and results in request order.
#[tokio::test]
async fn a_batch_gets_consecutive_offsets_from_one_in_request_order() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let first = publish(
        &mut client,
        "lessons",
        vec![
            event("lesson.published", "{}"),
            event("lesson.updated", "{}"),
        ],
    )
    .await;
    let second = publish(&mut client, "lessons", vec![event("lesson.archived", "{}")]).await;

    let offsets: Vec<i64> = first.iter().chain(&second).map(|r| r.offset).collect();
    assert_eq!(offsets, [1, 2, 3]);
    assert!(
        first
            .iter()
            .all(|r| !r.duplicate && r.appended_at.is_some())
    );
    let records = read_all(&mut client, "lessons").await;
    let types: Vec<&str> = records
        .iter()
        .map(|r| r.event.as_ref().unwrap().r#type.as_str())
        .collect();
    assert_eq!(
        types,
        ["lesson.published", "lesson.updated", "lesson.archived"]
    );
}

/// An empty id gets a server-assigned UUID, an unset time the append time, and
/// schema_version 0 means 1.
#[tokio::test]
async fn the_server_fills_in_id_time_and_schema_version() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let result = publish(&mut client, "t", vec![event("quiz.submitted", "{}")])
        .await
        .remove(0);

    assert!(uuid::Uuid::parse_str(&result.id).is_ok(), "{}", result.id);
    let record = read_all(&mut client, "t").await.remove(0);
    let stored = record.event.unwrap();
    assert_eq!(stored.id, result.id);
    assert_eq!(stored.time, record.appended_at);
    assert_eq!(stored.schema_version, 1);
}

/// Every envelope field and every payload kind comes back as it was sent.
#[tokio::test]
async fn every_field_and_payload_kind_round_trips() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let lesson = LessonPublished {
        lesson_id: "l-1".into(),
        title: "Fractions".into(),
        ..Default::default()
    };
    let any = prost_types::Any {
        type_url: "type.googleapis.com/edupulse.events.v1.LessonPublished".into(),
        value: lesson.encode_to_vec(),
    };
    let full = Event {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: "lesson.published".into(),
        source: "lesson-service".into(),
        subject: "lesson/l-1".into(),
        time: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_000,
        }),
        correlation_id: "corr-1".into(),
        causation_id: "cause-1".into(),
        schema_version: 3,
        attributes: [("tenant".to_string(), "school-7".to_string())].into(),
        content_type: "application/protobuf".into(),
        data: Some(event::Data::ProtoData(any)),
    };
    let binary = Event {
        data: Some(event::Data::BinaryData(vec![0, 159, 146, 150])),
        ..event("raw", "")
    };
    let text = Event {
        content_type: "text/plain".into(),
        data: Some(event::Data::TextData("plain words".into())),
        ..event("note", "")
    };
    let none = Event {
        data: None,
        ..event("empty", "")
    };
    let sent = vec![full, binary, text, none];

    publish(&mut client, "kinds", sent.clone()).await;

    let got: Vec<Event> = read_all(&mut client, "kinds")
        .await
        .into_iter()
        .map(|r| r.event.unwrap())
        .collect();
    assert_eq!(got[0], sent[0]);
    for (got, sent) in got.iter().zip(&sent).skip(1) {
        assert_eq!(got.data, sent.data);
        assert_eq!(got.content_type, sent.content_type);
    }
}

/// JSON payloads are stored as PostgreSQL json: an auditor can query into them with SQL.
#[tokio::test]
async fn json_payloads_are_queryable_in_sql() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let quiz = Event {
        subject: "student/s-9".into(),
        ..event("quiz.submitted", r#"{"student_id": "s-9", "score": 87}"#)
    };

    publish(
        &mut client,
        "quizzes",
        vec![quiz, event("quiz.submitted", r#"{"score": 12}"#)],
    )
    .await;

    let pool = server.sql().await;
    let (offset, score): (i64, i64) = sqlx::query_as(
        r#"SELECT "offset", (data_json->>'score')::bigint FROM events
           WHERE topic = 'quizzes' AND data_json->>'student_id' = 's-9'"#,
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((offset, score), (1, 87));
}

/// ListTopics reports each topic's head and count.
#[tokio::test]
async fn list_topics_reports_heads_and_counts() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "b-topic", vec![event("x", "{}"); 3]).await;
    publish(&mut client, "a-topic", vec![event("x", "{}")]).await;

    let topics = client
        .list_topics(ListTopicsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .topics;

    let summary: Vec<(&str, i64, i64)> = topics
        .iter()
        .map(|t| (t.name.as_str(), t.head_offset, t.event_count))
        .collect();
    assert_eq!(summary, [("a-topic", 1, 1), ("b-topic", 3, 3)]);
    assert!(topics.iter().all(|t| t.created_at.is_some()));
}
