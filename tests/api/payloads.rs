//! Payloads exactly as sent, validated and visible to SQL: JSON text keeps its bytes on
//! every path, an `Any` of a type the server knows must decode, and protobuf payloads of
//! known types can be queried as JSON while Read returns their bytes.

use crate::helpers::*;
use prost::Message;
use pulsebus::proto::edupulse::events::v1::QuizSubmitted;
use tonic::Code;

const QUIZ_URL: &str = "type.googleapis.com/edupulse.events.v1.QuizSubmitted";

/// JSON text the way a producer might write it, and PostgreSQL's JSONB would not keep
/// it: odd spacing and newlines, keys out of order, a repeated key, and numbers in
/// forms JSONB rewrites (`2.50`, `1e2`).
const ODD_JSON: &str = "{ \"score\" :55,\n\t\"quiz_id\":\"q-2\" , \"score\": 56,\
                        \"extra\": {\"b\":1,\"a\":[1 , 2.50, 1e2]} }";

/// An event whose payload is a protobuf `Any`.
fn proto_event(type_url: &str, value: Vec<u8>) -> Event {
    Event {
        content_type: "application/protobuf".into(),
        data: Some(event::Data::ProtoData(prost_types::Any {
            type_url: type_url.into(),
            value,
        })),
        ..event("quiz.submitted", "")
    }
}

/// Publishes `events` and returns the error status (panics if it succeeds).
async fn refused(
    client: &mut Client<tonic::transport::Channel>,
    events: Vec<Event>,
) -> tonic::Status {
    client
        .publish(PublishRequest {
            topic: "quizzes".into(),
            events,
        })
        .await
        .expect_err("the publish is refused")
}

/// The record at `offset` of `topic`, read with Read.
async fn read_one(server: &TestServer, topic: &str, offset: i64) -> Record {
    let mut client = server.client().await;
    let page = client
        .read(ReadRequest {
            topic: topic.into(),
            from_offset: offset,
            limit: 1,
            types: vec![],
        })
        .await
        .expect("read succeeds")
        .into_inner();
    page.records.into_iter().next().expect("the record exists")
}

fn text_data(record: &Record) -> &str {
    match &record.event.as_ref().unwrap().data {
        Some(event::Data::TextData(text)) => text,
        other => panic!("expected text_data, got {other:?}"),
    }
}

/// A JSON payload's record is the same, byte for byte, from the tail window (Read right
/// after Publish, a live subscriber), from PostgreSQL (Read and a catch-up subscriber on
/// a second server, whose window never held it, after later events) and after a
/// restart; and SQL can still query into it.
#[tokio::test]
async fn a_json_payload_has_the_same_bytes_on_every_path() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let mut live = subscribe(&mut client, sub_req("quizzes", "")).await;
    expect_heartbeat(&mut live).await;

    publish(
        &mut client,
        "quizzes",
        vec![event("quiz.submitted", ODD_JSON)],
    )
    .await;
    let from_window = read_one(&server, "quizzes", 1).await;
    // Subscribe says which delivery a record is (1), Read does not (0); the rest of the
    // record, payload included, must be the same bytes.
    let delivered = |mut record: Record| {
        assert_eq!(record.delivery_attempt, 1);
        record.delivery_attempt = 0;
        record
    };
    let from_live = delivered(next_record(&mut live).await);
    publish(&mut client, "quizzes", events("later", 50)).await;

    let second = TestServer::start_on(server.database_url.clone(), quick).await;
    let mut catch_up = subscribe(&mut second.client().await, sub_req("quizzes", "")).await;
    let from_catch_up = delivered(next_record(&mut catch_up).await);
    let from_postgres = read_one(&second, "quizzes", 1).await;
    let database_url = server.database_url.clone();
    drop((live, catch_up));
    server.stop().await;
    second.stop().await;
    let restarted = TestServer::start_on(database_url, |_| {}).await;
    let after_restart = read_one(&restarted, "quizzes", 1).await;

    assert_eq!(text_data(&from_window), ODD_JSON);
    for (path, record) in [
        ("live subscriber", &from_live),
        ("catch-up subscriber", &from_catch_up),
        ("Read from PostgreSQL", &from_postgres),
        ("Read after a restart", &after_restart),
    ] {
        assert_eq!(record, &from_window, "{path}");
        assert_eq!(
            record.encode_to_vec(),
            from_window.encode_to_vec(),
            "{path}"
        );
    }
    let (stored, score): (String, String) = sqlx::query_as(
        "SELECT data_json::text, data_json->>'score' FROM events WHERE topic = 'quizzes' \
         AND \"offset\" = 1",
    )
    .fetch_one(&restarted.sql().await)
    .await
    .unwrap();
    assert_eq!((stored.as_str(), score.as_str()), (ODD_JSON, "56"));
}

/// An `Any` naming a type the server knows (an EduPulse event, or any message of its
/// descriptor set) whose bytes do not decode fails the whole batch with
/// INVALID_ARGUMENT naming the event and the type; nothing of the batch is stored.
#[tokio::test]
async fn garbage_of_a_known_type_is_refused_naming_the_event_and_the_type() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let valid = QuizSubmitted {
        quiz_id: "q-1".into(),
        score: 9,
        ..Default::default()
    };

    let err = refused(
        &mut client,
        vec![
            event("quiz.started", "{}"),
            proto_event(QUIZ_URL, valid.encode_to_vec()),
            proto_event(QUIZ_URL, b"not a protobuf".to_vec()),
        ],
    )
    .await;
    let not_an_event = refused(
        &mut client,
        vec![proto_event(
            "example.com/pulsebus.v1.Event",
            vec![0x0a, 0x05, b'a'],
        )],
    )
    .await;

    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let expected = "events[2].proto_data: bytes are not a valid edupulse.events.v1.QuizSubmitted (";
    assert!(err.message().starts_with(expected), "{}", err.message());
    assert_eq!(not_an_event.code(), Code::InvalidArgument);
    assert!(
        not_an_event
            .message()
            .starts_with("events[0].proto_data: bytes are not a valid pulsebus.v1.Event ("),
        "{}",
        not_an_event.message()
    );
    let (events, topics): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM topics)")
            .fetch_one(&server.sql().await)
            .await
            .unwrap();
    assert_eq!((events, topics), (0, 0));
}

/// An `Any` of a type the server does not know stays opaque: any bytes are accepted,
/// stored and returned as sent, without a JSON rendering; a valid known one is
/// accepted too.
#[tokio::test]
async fn unknown_types_stay_opaque_and_valid_known_ones_are_accepted() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let garbage = b"\xff\xfe not protobuf at all".to_vec();
    let valid = QuizSubmitted {
        quiz_id: "q-1".into(),
        ..Default::default()
    };

    let results = publish(
        &mut client,
        "misc",
        vec![
            proto_event("type.example.com/acme.v1.Mystery", garbage.clone()),
            proto_event(QUIZ_URL, valid.encode_to_vec()),
        ],
    )
    .await;

    assert_eq!(results.len(), 2);
    let record = read_one(&server, "misc", 1).await;
    let Some(event::Data::ProtoData(any)) = record.event.unwrap().data else {
        panic!("the payload is proto_data");
    };
    assert_eq!(
        (any.type_url.as_str(), any.value),
        ("type.example.com/acme.v1.Mystery", garbage)
    );
    let rendered: Vec<(i64, bool)> =
        sqlx::query_as(r#"SELECT "offset", data_json IS NOT NULL FROM events ORDER BY 1"#)
            .fetch_all(&server.sql().await)
            .await
            .unwrap();
    assert_eq!(rendered, [(1, false), (2, true)]);
}

/// A QuizSubmitted sent as proto_data (here encoded unusually: fields out of order and
/// an unknown field, so a re-encoding would differ) is queryable as JSON in SQL with
/// the proto field names, while Read, from the window and from PostgreSQL, returns the
/// exact bytes as proto_data, never the rendering.
#[tokio::test]
async fn a_quiz_submitted_sent_as_proto_data_is_queryable_as_json_and_reads_back_as_its_bytes() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let submitted_at = prost_types::Timestamp {
        seconds: 1_714_557_600,
        nanos: 0,
    };
    let mut bytes = vec![0x20, 87]; // score = 87 (field 4) first
    bytes.extend([0x0a, 3, b'q', b'-', b'2']); // quiz_id = "q-2" (field 1)
    bytes.extend([0x1a, 3, b's', b'-', b'9']); // student_id = "s-9" (field 3)
    bytes.extend([0x3a, submitted_at.encoded_len() as u8]); // submitted_at (field 7)
    bytes.extend(submitted_at.encode_to_vec());
    bytes.extend([0xf8, 0x06, 1]); // field 111, unknown to QuizSubmitted
    assert_ne!(
        QuizSubmitted::decode(bytes.as_slice())
            .unwrap()
            .encode_to_vec(),
        bytes
    );
    let quiz = Event {
        subject: "student/s-9".into(),
        ..proto_event(QUIZ_URL, bytes.clone())
    };

    publish(&mut client, "quizzes", vec![quiz]).await;

    let row: (String, i32, String, String, String) = sqlx::query_as(
        r#"SELECT data_json->>'quiz_id', (data_json->>'score')::int, data_json->>'max_score',
                  data_json->>'submitted_at', data_type
           FROM events WHERE topic = 'quizzes' AND subject = 'student/s-9'"#,
    )
    .fetch_one(&server.sql().await)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "q-2".into(),
            87,
            "0".into(),
            "2024-05-01T10:00:00Z".into(),
            QUIZ_URL.into()
        )
    );
    let second = TestServer::start_on(server.database_url.clone(), |_| {}).await;
    for (path, record) in [
        ("window", read_one(&server, "quizzes", 1).await),
        ("PostgreSQL", read_one(&second, "quizzes", 1).await),
    ] {
        let data = record.event.unwrap().data;
        let Some(event::Data::ProtoData(any)) = data else {
            panic!("{path}: expected proto_data, got {data:?}");
        };
        assert_eq!(
            (any.type_url.as_str(), &any.value),
            (QUIZ_URL, &bytes),
            "{path}"
        );
    }
}

/// Rows stored before migration 0003 keep the text JSONB normalised them to (and read
/// back as that), while rows appended after it keep the producer's text.
#[tokio::test]
async fn rows_stored_before_migration_0003_keep_their_normalised_text() {
    let database_url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    pulsebus::db::MIGRATOR.run_to(2, &pool).await.unwrap();
    sqlx::raw_sql(
        r#"INSERT INTO topics (name, head) VALUES ('old', 1);
           INSERT INTO events (topic, "offset", id, type, source, subject, time,
                               correlation_id, causation_id, schema_version, attributes,
                               content_type, data_json, appended_at)
           VALUES ('old', 1, gen_random_uuid(), 'quiz.submitted', 'tests', '', now(), '',
                   '', 1, '{}', 'application/json', '{"score":5,  "a":1}', now())"#,
    )
    .execute(&pool)
    .await
    .unwrap();

    let server = TestServer::start_on(database_url, |_| {}).await;
    publish(
        &mut server.client().await,
        "old",
        vec![event("quiz.submitted", r#"{"score":6,  "a":1}"#)],
    )
    .await;

    assert_eq!(
        text_data(&read_one(&server, "old", 1).await),
        r#"{"a": 1, "score": 5}"#
    );
    assert_eq!(
        text_data(&read_one(&server, "old", 2).await),
        r#"{"score":6,  "a":1}"#
    );
}

/// A payload of a known type nesting `Any`s deeper than 100 levels (rendering it as JSON
/// would recurse that deep: thousands of levels fit in one event and overflowed the
/// stack) is INVALID_ARGUMENT, and the server keeps serving.
#[tokio::test]
async fn anys_nested_beyond_100_levels_are_refused_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut chain = prost_types::Any {
        type_url: QUIZ_URL.into(),
        value: Vec::new(),
    };
    for _ in 0..5000 {
        chain = prost_types::Any {
            type_url: "type.googleapis.com/google.protobuf.Any".into(),
            value: chain.encode_to_vec(),
        };
    }

    let err = refused(&mut client, vec![proto_event(&chain.type_url, chain.value)]).await;

    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().starts_with("events[0].proto_data: ") && err.message().contains("100 levels"),
        "{}",
        err.message()
    );
    publish(&mut client, "quizzes", vec![event("quiz.submitted", "{}")]).await;
}
